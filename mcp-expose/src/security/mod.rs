//! Security layers in front of the MCP endpoints: bearer-token authentication, rate limits and
//! the session cap.

pub(crate) mod auth;
pub(crate) mod rate;
pub(crate) mod sessions;

pub use auth::AuthOptions;
