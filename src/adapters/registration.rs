//! Client registries: the IdP's own registration endpoint (`upstream`) and the operator's
//! pre-registered client for IdPs without dynamic registration (`static`). The embedded
//! authorization server is the third, in `idp::embedded`.

mod static_client;
mod upstream;

pub use static_client::StaticRegistry;
pub use upstream::UpstreamRegistry;
