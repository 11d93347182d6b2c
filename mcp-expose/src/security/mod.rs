//! Security layers in front of the MCP endpoints: bearer-token authentication and rate limits.

pub(crate) mod auth;
pub(crate) mod rate;

pub use auth::AuthOptions;
