pub mod augment;
pub mod bench;
pub mod inspect;
