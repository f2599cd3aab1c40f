//! Development tokens: `dev1.<principal id>.<expiry, unix s>.<hex HMAC>`, accepted only by a
//! server started in development mode. The key is `dev-token.key` in the key directory, never
//! in the database.

use app::App;
use domain::Timestamp;
use kernel::AppError;
use vault::MacKey;

/// Signs and checks development tokens: `dev1.<principal id>.<expiry, unix s>.<hex HMAC>`.
/// The key is `dev-token.key` in the key directory, never in the database.
pub struct DevTokens {
    key: MacKey,
}

impl DevTokens {
    pub fn open(app: &App) -> Result<DevTokens, AppError> {
        let secret = app
            .kernel()
            .key_dir()
            .secret("dev-token", app.kernel().random())?;
        Ok(DevTokens {
            key: MacKey::new(&secret),
        })
    }

    pub fn mint(&self, principal_id: i64, expires: Timestamp) -> String {
        let body = format!("dev1.{principal_id}.{}", expires.0 / 1_000_000);
        let tag = crate::hex(&self.key.tag(body.as_bytes()));
        format!("{body}.{tag}")
    }

    /// The principal id of a valid, unexpired token.
    pub fn verify(&self, token: &str, now: Timestamp) -> Option<i64> {
        let (body, tag_hex) = token.rsplit_once('.')?;
        let tag = vault::unhex(tag_hex)?;
        if !self.key.verify(body.as_bytes(), &tag) {
            return None;
        }
        let mut parts = body.split('.');
        let (Some("dev1"), Some(id), Some(exp), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let exp: i64 = exp.parse().ok()?;
        (now.0 / 1_000_000 < exp).then_some(())?;
        id.parse().ok()
    }
}
