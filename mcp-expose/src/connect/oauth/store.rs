//! Signed-in servers on disk: one JSON file per server URL in the user's config directory
//! (`~/.config/mcp-expose/oauth/` on Linux), readable by the user alone (mode 0600, in a
//! 0700 directory), written whole or not at all.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, ErrorKind, Result};

/// What is kept for one server: how to refresh, and the tokens.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Saved {
    /// The MCP server's URL (the file's key).
    pub(crate) server: String,
    /// The authorization server that issued the tokens.
    pub(crate) issuer: String,
    pub(crate) token_endpoint: String,
    /// The RFC 8707 resource the tokens are for.
    pub(crate) resource: String,
    pub(crate) client: Registration,
    pub(crate) tokens: Tokens,
}

/// The client as the authorization server knows it.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Registration {
    pub(crate) client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) client_secret: Option<String>,
    /// `none`, `client_secret_basic`, `client_secret_post` or `private_key_jwt`.
    pub(crate) auth_method: String,
    /// For `private_key_jwt`: the PEM file of the key that signs the client's assertions
    /// (the key itself is never copied here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key_file: Option<std::path::PathBuf>,
    /// Tokens come from the client credentials grant (no user, no browser).
    #[serde(default)]
    pub(crate) client_credentials: bool,
}

/// Access and refresh tokens.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Tokens {
    pub(crate) access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<String>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scope: Option<String>,
}

// Secrets stay out of logs and panics.
impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Saved")
            .field("server", &self.server)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// The directory of saved sign-ins.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    dir: PathBuf,
}

impl Store {
    /// The user's config directory (`$XDG_CONFIG_HOME/mcp-expose/oauth`, ..).
    pub(crate) fn user() -> Result<Self> {
        let dirs = directories::ProjectDirs::from("", "", "mcp-expose").ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                "cannot find your config directory to keep sign-ins in: set HOME",
            )
        })?;
        Ok(Self {
            dir: dirs.config_dir().join("oauth"),
        })
    }

    /// The file for `server`.
    pub(crate) fn path(&self, server: &str) -> PathBuf {
        let digest = Sha256::digest(server.as_bytes());
        let name: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}.json"))
    }

    /// The sign-in saved for `server`, if any (an unreadable file counts as none).
    pub(crate) fn load(&self, server: &str) -> Option<Saved> {
        let path = self.path(server);
        let text = std::fs::read_to_string(&path).ok()?;
        match serde_json::from_str::<Saved>(&text) {
            Ok(saved) if saved.server == server => Some(saved),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring a saved sign-in that cannot be read");
                None
            }
        }
    }

    /// Saves `saved` (mode 0600), replacing what was there.
    pub(crate) fn save(&self, saved: &Saved) -> Result<()> {
        let path = self.path(&saved.server);
        let text = serde_json::to_vec_pretty(saved)
            .map_err(|e| Error::with_source(ErrorKind::Io, "cannot encode the sign-in", e))?;
        write_private(&self.dir, &path, &text).map_err(|e| {
            Error::with_source(
                ErrorKind::Io,
                format!("cannot save the sign-in to {}", path.display()),
                e,
            )
        })
    }

    /// Forgets `server`'s sign-in; whether there was one.
    pub(crate) fn remove(&self, server: &str) -> Result<bool> {
        let path = self.path(server);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::with_source(
                ErrorKind::Io,
                format!("cannot remove {}", path.display()),
                e,
            )),
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in `dir`, both readable by the owner only.
fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let temp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&temp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(server: &str) -> Saved {
        Saved {
            server: server.to_owned(),
            issuer: "http://127.0.0.1:1".to_owned(),
            token_endpoint: "http://127.0.0.1:1/token".to_owned(),
            resource: server.to_owned(),
            client: Registration {
                client_id: "c".to_owned(),
                client_secret: None,
                auth_method: "none".to_owned(),
                key_file: None,
                client_credentials: false,
            },
            tokens: Tokens {
                access_token: "secret-token".to_owned(),
                refresh_token: Some("r".to_owned()),
                expires_at: Some(1),
                scope: None,
            },
        }
    }

    #[test]
    fn saves_privately_loads_and_removes() {
        let dir = std::env::temp_dir().join(format!("mcp-expose-store-{}", std::process::id()));
        let store = Store { dir: dir.clone() };
        let server = "http://127.0.0.1:9/mcp";
        assert!(store.load(server).is_none());
        store.save(&saved(server)).unwrap();
        let loaded = store.load(server).unwrap();
        assert_eq!(loaded.tokens.access_token, "secret-token");
        assert!(!format!("{loaded:?}").contains("secret-token"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(store.path(server))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(store.load("http://127.0.0.1:9/other").is_none());
        assert!(store.remove(server).unwrap());
        assert!(!store.remove(server).unwrap());
        let _ = std::fs::remove_dir_all(dir);
    }
}
