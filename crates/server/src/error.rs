//! The one place where failures become HTTP responses.

use app::AppError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::Lang;
use serde::Serialize;

#[derive(Debug, Serialize)]
struct Detail {
    field: &'static str,
    rule: &'static str,
    message: String,
}

#[derive(Debug, Serialize)]
struct Body {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    details: Vec<Detail>,
}

#[derive(Debug, Serialize)]
struct Envelope {
    error: Body,
}

/// An error on its way to the caller.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: Body,
}

fn say(lang: Lang, fr: &str, ar: &str, en: &str) -> String {
    match lang {
        Lang::Fr => fr,
        Lang::Ar => ar,
        Lang::En => en,
    }
    .to_string()
}

impl ApiError {
    fn plain(status: StatusCode, code: &'static str, message: String) -> ApiError {
        ApiError {
            status,
            body: Body {
                code,
                message,
                details: vec![],
            },
        }
    }

    pub fn new(e: AppError, lang: Lang) -> ApiError {
        use StatusCode as S;
        match e {
            AppError::Invalid(errors) => ApiError {
                status: S::UNPROCESSABLE_ENTITY,
                body: Body {
                    code: "invalid_input",
                    message: say(
                        lang,
                        "Données invalides.",
                        "بيانات غير صحيحة.",
                        "Invalid input.",
                    ),
                    details: errors
                        .iter()
                        .map(|v| Detail {
                            field: v.field,
                            rule: v.rule.code(),
                            message: v.message(lang),
                        })
                        .collect(),
                },
            },
            // The reason stays in the audit log: telling it would say whether the person exists.
            AppError::Denied(_) => ApiError::plain(
                S::FORBIDDEN,
                "access_denied",
                say(
                    lang,
                    "Accès refusé : vous ne pouvez pas consulter ou modifier ces données.",
                    "تم رفض الوصول: لا يمكنك الاطلاع على هذه البيانات أو تعديلها.",
                    "Access denied: you may not read or change this data.",
                ),
            ),
            AppError::NotFound(what) => ApiError::plain(
                S::NOT_FOUND,
                "not_found",
                match what {
                    "employer" => say(
                        lang,
                        "Aucun employeur avec ce numéro d'affiliation.",
                        "لا يوجد مشغل بهذا رقم الانخراط.",
                        "No employer with this affiliation number.",
                    ),
                    _ => say(
                        lang,
                        "Aucune personne ne correspond.",
                        "لا يوجد شخص مطابق.",
                        "No matching person.",
                    ),
                },
            ),
            AppError::Conflict(what) => ApiError::plain(
                S::CONFLICT,
                "conflict",
                match what {
                    "cin" => say(
                        lang,
                        "Une personne avec cette CIN est déjà immatriculée.",
                        "يوجد شخص مسجل بنفس رقم البطاقة الوطنية.",
                        "A person with this CIN is already registered.",
                    ),
                    "ice" => say(
                        lang,
                        "Un employeur avec cet ICE est déjà affilié.",
                        "يوجد مشغل منخرط بنفس رقم ICE.",
                        "An employer with this ICE is already affiliated.",
                    ),
                    "employment" => say(
                        lang,
                        "Ce lien d'emploi existe déjà.",
                        "علاقة الشغل هذه موجودة مسبقًا.",
                        "This employment link already exists.",
                    ),
                    _ => say(lang, "Existe déjà.", "موجود مسبقًا.", "Already exists."),
                },
            ),
            AppError::Unauthenticated => ApiError::plain(
                S::UNAUTHORIZED,
                "unauthenticated",
                say(
                    lang,
                    "Authentification requise.",
                    "المصادقة مطلوبة.",
                    "Authentication required.",
                ),
            ),
            AppError::Unavailable => ApiError::unavailable(),
            AppError::Store(e) if e.is_overload() => ApiError::unavailable(),
            e @ (AppError::Store(_)
            | AppError::Vault(_)
            | AppError::Audit
            | AppError::Internal(_)) => {
                // Logged without values: these errors carry none.
                tracing::error!(error = %e, source = ?std::error::Error::source(&e).map(|s| s.to_string()), "internal error");
                ApiError::plain(
                    S::INTERNAL_SERVER_ERROR,
                    "internal",
                    say(
                        lang,
                        "Erreur interne. Réessayez plus tard.",
                        "خطأ داخلي. حاول مرة أخرى لاحقًا.",
                        "Internal error. Try again later.",
                    ),
                )
            }
        }
    }

    /// 503: the server is shedding load.
    pub fn unavailable() -> ApiError {
        ApiError::plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service momentanément surchargé, réessayez dans un instant. الخدمة مشغولة حاليًا، حاول بعد لحظة.".into(),
        )
    }

    pub fn not_found_route() -> ApiError {
        ApiError::plain(
            StatusCode::NOT_FOUND,
            "no_such_route",
            "Route inconnue. مسار غير معروف.".into(),
        )
    }

    /// A body that is not the JSON expected. The parser's message is not echoed: it can quote
    /// the input, which may be personal data.
    pub fn bad_body(lang: Lang, status: StatusCode) -> ApiError {
        ApiError::plain(
            if status.is_client_error() {
                status
            } else {
                StatusCode::BAD_REQUEST
            },
            "bad_request",
            say(
                lang,
                "Corps de requête invalide : JSON attendu selon /api/v1/openapi.json.",
                "محتوى الطلب غير صحيح: يجب أن يكون JSON وفق ‎/api/v1/openapi.json.",
                "Malformed request body: JSON as described in /api/v1/openapi.json expected.",
            ),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(Envelope { error: self.body })).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        res
    }
}
