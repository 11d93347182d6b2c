//! Security layers in front of the MCP endpoints: bearer-token authentication.

pub(crate) mod auth;

pub use auth::AuthOptions;
