//! Security layers in front of the MCP endpoints: the Host/Origin policy, bearer-token
//! authentication, rate limits, the session cap, and the gate that applies the policy and the
//! cap (and refuses new requests while shutting down).

pub(crate) mod auth;
pub(crate) mod gate;
#[cfg(feature = "oauth")]
pub(crate) mod jwks;
#[cfg(feature = "oauth")]
pub(crate) mod oauth;
pub(crate) mod policy;
pub(crate) mod principal;
pub(crate) mod rate;
pub(crate) mod sessions;
#[cfg(feature = "redis")]
pub(crate) mod shared;

pub use auth::AuthOptions;
#[cfg(feature = "oauth")]
pub use oauth::OAuthOptions;
