//! Security layers in front of the MCP endpoints: bearer-token authentication, rate limits and
//! the session cap.

pub(crate) mod auth;
#[cfg(feature = "oauth")]
pub(crate) mod jwks;
#[cfg(feature = "oauth")]
pub(crate) mod oauth;
pub(crate) mod rate;
pub(crate) mod sessions;

pub use auth::AuthOptions;
#[cfg(feature = "oauth")]
pub use oauth::OAuthOptions;
