//! Values and tokens whose `Debug` never shows them.

pub use kube_dc_api::wire::Sensitive;
