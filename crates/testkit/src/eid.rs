//! A real OpenID Connect provider for tests: `peers/eid-provider.mjs` (npm `oidc-provider`),
//! standing in for the national E-ID, started on a free 127.0.0.1 port and stopped on drop; and
//! a minimal browser (plain HTTP, a cookie jar, no JavaScript) that logs in at its development
//! login form and consents, up to the redirect back to daman.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub const REDIRECT: &str = "http://localhost:8080/api/v1/auth/eid/callback";

pub struct EidOp {
    pub issuer: String,
    child: Child,
}

impl EidOp {
    /// Starts the provider; `env` sets its test hooks (`ID_TOKEN_TTL`, `JWKS_FILE`).
    pub fn start(env: &[(&str, &str)]) -> EidOp {
        let peers = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers");
        assert!(
            peers.join("node_modules/oidc-provider").is_dir(),
            "run `npm ci --prefix crates/testkit/peers` first (scripts/test does)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new("node");
        cmd.arg(peers.join("eid-provider.mjs"))
            .arg(port.to_string())
            .env("REDIRECT_URI", REDIRECT)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("node");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "E-ID provider did not start");
        EidOp {
            issuer: format!("http://127.0.0.1:{port}"),
            child,
        }
    }

    /// daman's registration with this provider.
    pub fn config(&self, client_id: &str) -> auth::eid::EidConfig {
        auth::eid::EidConfig {
            issuer: self.issuer.clone(),
            client_id: client_id.into(),
            client_secret: format!("{client_id}-secret").into(),
            redirect_url: REDIRECT.into(),
            national_id_claim: "national_id".into(),
            scopes: vec!["national_id".into()],
        }
    }
}

impl Drop for EidOp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Logs in as `login` at the provider behind `authorization_url` and consents; returns the
/// query the provider sends back to daman's callback (`code`, `state`, `iss`).
pub async fn log_in_at_provider(authorization_url: &str, login: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut cookies: HashMap<String, String> = HashMap::new();
    let mut url = reqwest::Url::parse(authorization_url).unwrap();
    let mut form: Option<Vec<(&str, String)>> = None;
    for _ in 0..12 {
        let jar = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = match form.take() {
            Some(fields) => http.post(url.clone()).form(&fields),
            None => http.get(url.clone()),
        };
        let res = req.header("cookie", jar).send().await.unwrap();
        for sc in res.headers().get_all("set-cookie") {
            let pair = sc.to_str().unwrap().split(';').next().unwrap_or("");
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() {
                    cookies.remove(k.trim());
                } else {
                    cookies.insert(k.trim().into(), v.into());
                }
            }
        }
        if res.status().is_redirection() {
            let next = url
                .join(res.headers()["location"].to_str().unwrap())
                .unwrap();
            if next.as_str().starts_with(REDIRECT) {
                return next.query().unwrap_or("").to_string();
            }
            url = next;
            continue;
        }
        let html = res.text().await.unwrap();
        let action = html
            .find("<form")
            .and_then(|i| {
                let rest = &html[i..];
                let a = rest.find("action=\"")? + 8;
                let end = rest[a..].find('"')?;
                Some(rest[a..a + end].replace("&amp;", "&"))
            })
            .expect("a form");
        url = url.join(&action).unwrap();
        form = Some(if html.contains(r#"name="prompt" value="login""#) {
            vec![
                ("prompt", "login".into()),
                ("login", login.into()),
                ("password", "any".into()),
            ]
        } else {
            vec![("prompt", "consent".into())]
        });
    }
    panic!("the provider never sent the browser back");
}
