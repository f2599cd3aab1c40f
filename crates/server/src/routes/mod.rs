//! Routes and handlers, one file per capability. Handlers only translate: HTTP in, one call to
//! the service the route belongs to, HTTP out.

mod contributions;
mod identity;
mod ledger;
mod registry;
mod security;

use crate::error::ApiError;
use crate::{State as AppState, ok_text};
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The OpenAPI 3.1 document of the API, served at `/api/v1/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// Every API route as (method, path): the router and the OpenAPI document must both list exactly
/// these (a test checks it).
pub const API_ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/openapi.json"),
    ("post", "/api/v1/employers"),
    ("post", "/api/v1/persons"),
    ("post", "/api/v1/persons/read"),
    ("post", "/api/v1/persons/contact"),
    ("post", "/api/v1/employments"),
    ("post", "/api/v1/employments/claims"),
    ("post", "/api/v1/employments/claims/decide"),
    ("post", "/api/v1/cases"),
    ("post", "/api/v1/principals/unlock"),
    ("post", "/api/v1/breach/report"),
    ("post", "/api/v1/me/accesses"),
    ("post", "/api/v1/breach/contacts/request"),
    ("post", "/api/v1/breach/contacts/approve"),
    ("post", "/api/v1/breach/contacts"),
    ("post", "/api/v1/auth/enrol"),
    ("post", "/api/v1/auth/enrol/confirm"),
    ("post", "/api/v1/auth/invitations"),
    ("post", "/api/v1/auth/invitations/accept"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/login/sms"),
    ("post", "/api/v1/auth/login/passkey"),
    ("get", "/api/v1/auth/eid/start"),
    ("get", "/api/v1/auth/eid/callback"),
    ("post", "/api/v1/auth/login/verify"),
    ("post", "/api/v1/auth/passkeys/setup"),
    ("post", "/api/v1/auth/passkeys/setup/finish"),
    ("get", "/api/v1/auth/session"),
    ("post", "/api/v1/auth/logout"),
    ("post", "/api/v1/auth/sessions/end-others"),
    ("post", "/api/v1/auth/password"),
    ("post", "/api/v1/auth/step-up/sms"),
    ("post", "/api/v1/auth/step-up/passkey"),
    ("post", "/api/v1/auth/step-up"),
    ("get", "/api/v1/auth/factors"),
    ("post", "/api/v1/auth/factors/totp"),
    ("post", "/api/v1/auth/factors/totp/confirm"),
    ("post", "/api/v1/auth/factors/phone"),
    ("post", "/api/v1/auth/factors/phone/confirm"),
    ("post", "/api/v1/auth/factors/passkey"),
    ("post", "/api/v1/auth/factors/passkey/confirm"),
    ("post", "/api/v1/auth/factors/remove"),
    ("post", "/api/v1/persons/rib"),
    ("post", "/api/v1/rib-changes/cancel"),
    ("post", "/api/v1/declarations/preetabli"),
    ("post", "/api/v1/declarations"),
    ("post", "/api/v1/declarations/{id}/rectification"),
    ("post", "/api/v1/declarations/list"),
    ("post", "/api/v1/declarations/file"),
    ("post", "/api/v1/declarations/receipt"),
    ("post", "/api/v1/declarations/rejections"),
    ("post", "/api/v1/declarations/lines"),
    ("post", "/api/v1/statement"),
    ("post", "/api/v1/career"),
    ("post", "/api/v1/payments"),
    ("post", "/api/v1/ledger"),
];

pub(crate) fn health() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { ok_text("ok") }))
        .route("/readyz", get(readyz))
}

pub(crate) fn api(max_body: usize, limiter: crate::RouteLimiter) -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .merge(registry::routes())
        .merge(security::routes())
        .merge(contributions::routes())
        .merge(ledger::routes())
        .merge(
            identity::routes().route_layer(axum::middleware::from_fn_with_state(
                limiter,
                crate::limit::per_ip,
            )),
        )
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .merge(contributions::upload())
}

async fn readyz(State(s): State<AppState>) -> Response {
    if s.app.kernel().ready().await {
        ok_text("ready")
    } else {
        ApiError::unavailable().into_response()
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

#[cfg(test)]
pub(crate) mod tests {
    //! The OpenAPI document held to the types the routes read: for every route with a JSON
    //! body, the body's properties are exactly the fields of the Rust type (read from serde's
    //! own refusal of an unknown field), a body built from the document's schemas (types,
    //! enums, examples) is read by the type, and a property is required in the document
    //! exactly when the type cannot do without it.

    use serde::de::DeserializeOwned;
    use serde_json::{Map, Value, json};
    use std::collections::BTreeSet;

    /// A route's method, path, and the reader of its body.
    pub(crate) type BodyProbe = (&'static str, &'static str, fn(Value) -> Result<(), String>);

    pub(crate) fn probe<T: DeserializeOwned>(v: Value) -> Result<(), String> {
        serde_json::from_value::<T>(v)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                resolve(doc, &doc["components"]["schemas"][name])
            }
            None => schema,
        }
    }

    /// A value the schema describes: its example, its first enum value, or one of its type.
    fn sample(doc: &Value, schema: &Value) -> Value {
        let s = resolve(doc, schema);
        if let Some(e) = s.get("example") {
            return e.clone();
        }
        if let Some(e) = s.get("enum").and_then(|e| e.get(0)) {
            return e.clone();
        }
        let ty = match &s["type"] {
            Value::Array(types) => types
                .iter()
                .find(|t| *t != "null")
                .cloned()
                .unwrap_or(Value::Null),
            t => t.clone(),
        };
        match ty.as_str() {
            Some("string") => json!("x"),
            Some("integer") => json!(1),
            Some("boolean") => json!(false),
            Some("array") => json!([sample(doc, &s["items"])]),
            Some("object") => Value::Object(sample_object(doc, s, None)),
            _ => Value::Null,
        }
    }

    fn sample_object(doc: &Value, s: &Value, without: Option<&str>) -> Map<String, Value> {
        let mut m = Map::new();
        if let Some(props) = s["properties"].as_object() {
            for (k, v) in props {
                if Some(k.as_str()) != without {
                    m.insert(k.clone(), sample(doc, v));
                }
            }
        }
        m
    }

    /// The fields of the type behind `read`, from its refusal of an unknown one.
    fn fields_of(read: fn(Value) -> Result<(), String>) -> Result<BTreeSet<String>, String> {
        let err = match read(json!({"\u{1}probe": 0})) {
            Ok(()) => return Err("accepts an unknown field".into()),
            Err(e) => e,
        };
        let Some((_, expected)) = err.split_once("unknown field `\u{1}probe`, ") else {
            return Err(format!("does not refuse an unknown field first: {err}"));
        };
        Ok(expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect())
    }

    #[test]
    fn every_request_body_is_the_type_the_route_reads() {
        let doc: Value = serde_json::from_str(super::OPENAPI_JSON).unwrap();
        let bodies: Vec<BodyProbe> = [
            super::registry::bodies(),
            super::security::bodies(),
            super::identity::bodies(),
            super::contributions::bodies(),
            super::ledger::bodies(),
        ]
        .concat();
        let mut problems = Vec::new();
        for (method, path, read) in &bodies {
            let op = &doc["paths"][path][method];
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            if schema.is_null() {
                problems.push(format!(
                    "{method} {path}: no JSON request body in the document"
                ));
                continue;
            }
            let s = resolve(&doc, schema);
            let documented: BTreeSet<String> = s["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            match fields_of(*read) {
                Ok(fields) if fields != documented => problems.push(format!(
                    "{method} {path}: the type reads {fields:?}, the document says {documented:?}"
                )),
                Ok(_) => {}
                Err(e) => problems.push(format!("{method} {path}: the type {e}")),
            }
            if let Err(e) = read(Value::Object(sample_object(&doc, s, None))) {
                problems.push(format!(
                    "{method} {path}: a body as the document describes it is refused: {e}"
                ));
                continue;
            }
            let required: BTreeSet<String> = s["required"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            for field in &documented {
                let missing = read(Value::Object(sample_object(&doc, s, Some(field))))
                    .err()
                    .is_some_and(|e| e.contains(&format!("missing field `{field}`")));
                if missing != required.contains(field) {
                    problems.push(format!(
                        "{method} {path}: `{field}` is {} by the type and {} in the document",
                        if missing { "required" } else { "optional" },
                        if required.contains(field) {
                            "required"
                        } else {
                            "optional"
                        },
                    ));
                }
            }
        }
        // Every documented JSON body has its route's reader here.
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let json_body = !op["requestBody"]["content"]["application/json"].is_null();
                if json_body && !bodies.iter().any(|(m, p, _)| m == method && p == path) {
                    problems.push(format!(
                        "{method} {path}: documented body, no reader listed"
                    ));
                }
            }
        }
        assert!(bodies.len() >= 40, "{} bodies", bodies.len());
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
