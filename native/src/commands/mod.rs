pub mod augment;
pub mod bench;
pub mod eval;
pub mod export;
pub mod import;
pub mod inspect;
pub mod pretrain;
