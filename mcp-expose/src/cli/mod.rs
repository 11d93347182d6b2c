//! The `mcp-expose` command's subcommands that serve: `bridge` (one stdio server on the
//! network) and `gateway` (several, under path prefixes). The binary parses its command line
//! into these options and runs them; a program that embeds the command line can do the same.
//! (`connect`, the client side, is [`crate::connect`].)

pub mod bridge;
pub mod gateway;
