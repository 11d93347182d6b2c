//! The OAuth and Cloudflare Access flags.

/// OAuth and Cloudflare Access flags (feature `oauth`).
#[derive(Debug, Clone, Default, clap::Args)]
#[non_exhaustive]
pub struct OAuthOptions {
    /// Accept OAuth access tokens (JWTs) from this authorization server (repeatable): a token's
    /// `iss` must be one of them. Listed in /.well-known/oauth-protected-resource.
    #[arg(
        long = "oauth-issuer",
        value_name = "URL",
        value_delimiter = ',',
        env = "MCP_EXPOSE_OAUTH_ISSUERS"
    )]
    pub oauth_issuers: Vec<String>,

    /// Where the issuers' signing keys are (default: `jwks_uri` from each issuer's metadata).
    #[arg(long, value_name = "URL", requires = "oauth_issuers")]
    pub oauth_jwks_url: Option<String>,

    /// Accepted `aud` values (repeatable; default: the resource URL).
    #[arg(
        long = "oauth-audience",
        value_name = "AUD",
        requires = "oauth_issuers"
    )]
    pub oauth_audiences: Vec<String>,

    /// Scopes every token must carry (repeatable); a token without them gets 403.
    #[arg(long = "oauth-scope", value_name = "SCOPE", requires = "oauth_issuers")]
    pub oauth_scopes: Vec<String>,

    /// This server's resource URL, e.g. `https://mcp.example.com/mcp` (default: the tunnel's
    /// public URL, else `http://<Host header>/mcp`).
    #[arg(long, value_name = "URL", requires = "oauth_issuers")]
    pub oauth_resource: Option<String>,

    /// Accept Cloudflare Access's `Cf-Access-Jwt-Assertion` from this team (`NAME` for
    /// `https://NAME.cloudflareaccess.com`, or a full URL).
    #[arg(long, value_name = "TEAM", requires = "cf_access_aud")]
    pub cf_access_team: Option<String>,

    /// The Access application's audience tag (repeatable).
    #[arg(
        long = "cf-access-aud",
        value_name = "AUD",
        value_delimiter = ',',
        requires = "cf_access_team"
    )]
    pub cf_access_aud: Vec<String>,
}

impl OAuthOptions {
    pub(crate) fn configured(&self) -> bool {
        !self.oauth_issuers.is_empty() || self.cf_access_team.is_some()
    }
}
