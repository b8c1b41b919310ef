pub mod augment;
pub mod bench;
pub mod eval;
pub mod inspect;
pub mod pretrain;
