//! The one place where failures become HTTP responses.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::Lang;
use kernel::{AppError, Clash, Missing};
use serde::Serialize;

#[derive(Debug, Serialize)]
struct Detail {
    /// For a file: the line (1-based; 0 for the whole file) and the record type.
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<String>,
    field: String,
    rule: String,
    /// For a file: the value found, as it was in the file the caller sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    found: Option<String>,
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
    /// Seconds for `Retry-After`.
    retry_after: Option<i64>,
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
            retry_after: None,
        }
    }

    /// A declaration file that was not accepted: every error, where it is and what was found
    /// (the caller's own file: quoting it tells them nothing new).
    pub fn rejected_file(lang: Lang, errors: Vec<contributions::ErrorView>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: Body {
                code: "declaration_rejected",
                message: say(
                    lang,
                    "Déclaration rejetée : elle n'est pas enregistrée (ses erreurs restent consultables). Corrigez toutes les erreurs et renvoyez le fichier.",
                    "تم رفض التصريح: لم يُسجَّل (تبقى أخطاؤه قابلة للاطلاع). صححوا كل الأخطاء وأعيدوا إرسال الملف.",
                    "Declaration rejected: it is not recorded (its errors can be read again). Mend every error and send the file again.",
                ),
                details: errors
                    .into_iter()
                    .map(|e| Detail {
                        line: Some(e.line),
                        record: Some(e.record),
                        field: e.field,
                        rule: e.code,
                        found: Some(e.found),
                        message: e.message,
                    })
                    .collect(),
            },
            retry_after: None,
        }
    }

    fn retry(mut self, seconds: i64) -> ApiError {
        self.retry_after = Some(seconds.max(1));
        self
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
                            line: None,
                            record: None,
                            field: v.field.into(),
                            rule: v.rule.code().into(),
                            found: None,
                            message: v.message(lang),
                        })
                        .collect(),
                },
                retry_after: None,
            },
            AppError::Denied(domain::DenyReason::PasskeyRequired) => ApiError::plain(
                S::FORBIDDEN,
                "passkey_required",
                say(
                    lang,
                    "Les agents de la caisse se connectent uniquement avec une clé d'accès (passkey).",
                    "يسجل موظفو الصندوق الدخول بمفتاح المرور (passkey) فقط.",
                    "Staff of the fund log in with a passkey only.",
                ),
            ),
            AppError::Denied(domain::DenyReason::ReadBudget) => ApiError::plain(
                S::FORBIDDEN,
                "read_budget_exceeded",
                say(
                    lang,
                    "Limite de consultations atteinte : votre compte est bloqué jusqu'à l'examen par un responsable de la sécurité.",
                    "تم بلوغ حد الاطلاع: حسابك موقوف إلى حين مراجعته من طرف مسؤول الأمن.",
                    "Read limit reached: your account is locked until a security officer reviews it.",
                ),
            ),
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
            AppError::NotFound(what) => {
                ApiError::plain(S::NOT_FOUND, "not_found", missing(what, lang))
            }
            AppError::Conflict(what) => ApiError::plain(S::CONFLICT, "conflict", clash(what, lang)),
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
            // One answer for an unknown login, a wrong password and a disabled account.
            AppError::LoginFailed => ApiError::plain(
                S::UNAUTHORIZED,
                "login_failed",
                say(
                    lang,
                    "Identifiant ou mot de passe incorrect.",
                    "المعرف أو كلمة المرور غير صحيحة.",
                    "Wrong login or password.",
                ),
            ),
            AppError::Throttled(seconds) => ApiError::plain(
                S::TOO_MANY_REQUESTS,
                "too_many_attempts",
                say(
                    lang,
                    "Trop d'essais infructueux. Réessayez après le délai indiqué (Retry-After, en secondes).",
                    "محاولات فاشلة كثيرة. أعد المحاولة بعد المهلة المحددة (Retry-After بالثواني).",
                    "Too many failed attempts. Try again after the delay given (Retry-After, seconds).",
                ),
            )
            .retry(seconds),
            AppError::CodeRejected => ApiError::plain(
                S::UNAUTHORIZED,
                "code_rejected",
                say(
                    lang,
                    "Code incorrect, expiré ou déjà utilisé.",
                    "الرمز غير صحيح أو منتهي الصلاحية أو سبق استعماله.",
                    "Wrong, expired or already used code.",
                ),
            ),
            AppError::StepUpRequired => ApiError::plain(
                S::UNAUTHORIZED,
                "step_up_required",
                say(
                    lang,
                    "Confirmez d'abord votre identité avec votre second facteur (POST /api/v1/auth/step-up).",
                    "أكد هويتك أولًا بعامل التحقق الثاني (POST /api/v1/auth/step-up).",
                    "Confirm your identity with your second factor first (POST /api/v1/auth/step-up).",
                ),
            ),
            AppError::SmsLimit => ApiError::plain(
                S::TOO_MANY_REQUESTS,
                "sms_limit",
                say(
                    lang,
                    "Trop de SMS envoyés. Utilisez un code déjà reçu ou réessayez plus tard.",
                    "تم إرسال رسائل كثيرة. استعمل رمزًا وصلك أو أعد المحاولة لاحقًا.",
                    "Too many text messages sent. Use a code you received or try again later.",
                ),
            )
            .retry(3600),
            AppError::Busy => ApiError::unavailable(),
            AppError::Unavailable => ApiError::unavailable(),
            AppError::Store(e) if e.is_overload() => ApiError::unavailable(),
            e @ (AppError::Store(_)
            | AppError::Vault(_)
            | AppError::Audit
            | AppError::Witness(_)
            | AppError::Keys(_)
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

    /// 429: this address sent too many requests to this route in the last minute.
    pub fn too_many_requests(wait: u64) -> ApiError {
        ApiError::plain(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Trop de requêtes, réessayez dans un instant. طلبات كثيرة، حاول بعد لحظة.".into(),
        )
        .retry(wait as i64)
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

/// The message of a 404: what was not found.
fn missing(what: Missing, lang: Lang) -> String {
    match what {
        Missing::Employer => say(
            lang,
            "Aucun employeur avec ce numéro d'affiliation.",
            "لا يوجد مشغل بهذا رقم الانخراط.",
            "No employer with this affiliation number.",
        ),
        Missing::Invitation => say(
            lang,
            "Invitation inconnue, déjà utilisée ou expirée.",
            "دعوة غير معروفة أو مستعملة أو منتهية الصلاحية.",
            "Unknown, used or expired invitation.",
        ),
        Missing::RibChange => say(
            lang,
            "Aucun changement de RIB en attente ne correspond à ce code.",
            "لا يوجد طلب تغيير RIB معلق يطابق هذا الرمز.",
            "No pending RIB change matches this code.",
        ),
        Missing::Eid => say(
            lang,
            "La connexion par E-ID n'est pas configurée sur ce serveur.",
            "تسجيل الدخول عبر E-ID غير مفعّل على هذا الخادم.",
            "E-ID login is not configured on this server.",
        ),
        Missing::Declaration => say(
            lang,
            "Aucune déclaration acceptée ne correspond.",
            "لا يوجد تصريح مقبول مطابق.",
            "No matching accepted declaration.",
        ),
        Missing::Preetabli => say(
            lang,
            "Aucun préétabli n'a été émis pour cette période.",
            "لم يصدر أي تصريح مسبق لهذه الفترة.",
            "No préétabli was issued for this period.",
        ),
        Missing::Factor => say(
            lang,
            "Aucun de vos seconds facteurs ne correspond.",
            "لا يطابق أي من عوامل التحقق الثانية لديك.",
            "None of your second factors matches.",
        ),
        Missing::Account => say(
            lang,
            "Aucun compte avec cet identifiant.",
            "لا يوجد حساب بهذا المعرف.",
            "No account with this login.",
        ),
        Missing::Principal => say(
            lang,
            "Aucun compte ne porte ce numéro.",
            "لا يوجد حساب بهذا الرقم.",
            "No principal with this id.",
        ),
        Missing::Release => say(
            lang,
            "Aucune demande de coordonnées ne porte ce numéro.",
            "لا يوجد طلب لمعطيات الاتصال بهذا الرقم.",
            "No contact release with this id.",
        ),
        Missing::AuditEntry => say(
            lang,
            "Aucune entrée du journal d'audit ne porte ce numéro dans le dernier point de contrôle.",
            "لا توجد بهذا الرقم أي مدخلة لسجل التدقيق في آخر نقطة مراقبة.",
            "No audit entry with this number in the latest checkpoint.",
        ),
        Missing::AuditCheckpoint => say(
            lang,
            "Le journal d'audit n'a pas encore de point de contrôle signé.",
            "لا توجد بعد نقطة مراقبة موقعة لسجل التدقيق.",
            "The audit log has no signed checkpoint yet.",
        ),
        Missing::Claim => say(
            lang,
            "Aucune déclaration d'emploi en attente que vous puissiez trancher sous ce numéro.",
            "لا يوجد تصريح بالتشغيل في الانتظار يمكنكم البت فيه بهذا الرقم.",
            "No pending employment claim that you may decide has this id.",
        ),
        Missing::Person => say(
            lang,
            "Aucune personne ne correspond.",
            "لا يوجد شخص مطابق.",
            "No matching person.",
        ),
    }
}

/// The message of a 409: what stands in the way.
fn clash(what: Clash, lang: Lang) -> String {
    match what {
        Clash::Payment => say(
            lang,
            "Ce numéro de référence bancaire est déjà enregistré pour un autre paiement.",
            "مرجع التحويل البنكي هذا مسجل من قبل لأداء آخر.",
            "This bank reference is already recorded for another payment.",
        ),
        Clash::Cin => say(
            lang,
            "Une personne avec cette CIN est déjà immatriculée.",
            "يوجد شخص مسجل بنفس رقم البطاقة الوطنية.",
            "A person with this CIN is already registered.",
        ),
        Clash::Ice => say(
            lang,
            "Un employeur avec cet ICE est déjà affilié.",
            "يوجد مشغل منخرط بنفس رقم ICE.",
            "An employer with this ICE is already affiliated.",
        ),
        Clash::Employment => say(
            lang,
            "Ce lien d'emploi existe déjà.",
            "علاقة الشغل هذه موجودة مسبقًا.",
            "This employment link already exists.",
        ),
        Clash::Login => say(
            lang,
            "Cet identifiant est déjà pris.",
            "هذا المعرف مستعمل.",
            "This login is taken.",
        ),
        Clash::RecentPhoneChange => say(
            lang,
            "Votre numéro de téléphone a changé il y a moins de 7 jours : le RIB ne peut pas encore être modifié.",
            "تم تغيير رقم هاتفك منذ أقل من 7 أيام: لا يمكن تغيير RIB بعد.",
            "Your phone number changed less than 7 days ago: the RIB cannot be changed yet.",
        ),
        Clash::Rectified => say(
            lang,
            "Cette déclaration a déjà été rectifiée : c'est sa rectification qu'il faut rectifier.",
            "سبق تصحيح هذا التصريح: يجب تصحيح التصريح الذي صححه.",
            "This declaration was already rectified: rectify its rectification instead.",
        ),
        Clash::LastFactor => say(
            lang,
            "Impossible de retirer votre dernier second facteur.",
            "لا يمكن حذف آخر عامل تحقق ثانٍ لديك.",
            "You cannot remove your last second factor.",
        ),
        Clash::ReleaseNotApproved => say(
            lang,
            "Cette demande n'est pas encore approuvée par un second responsable de la sécurité.",
            "لم يوافق بعد مسؤول أمن ثانٍ على هذا الطلب.",
            "A second security officer has not approved this request yet.",
        ),
        Clash::ReleaseDiffers => say(
            lang,
            "La demande porte sur d'autres comptes ou une autre période que celle approuvée.",
            "الطلب يخص حسابات أو فترة غير التي تمت الموافقة عليها.",
            "The request is for other principals or another window than the one approved.",
        ),
        Clash::ReleaseAlreadyApproved => say(
            lang,
            "Cette demande est déjà approuvée.",
            "تمت الموافقة على هذا الطلب من قبل.",
            "This request is already approved.",
        ),
        Clash::ReleaseAlreadyUsed => say(
            lang,
            "Ces coordonnées ont déjà été remises : faites une nouvelle demande.",
            "سبق تسليم معطيات الاتصال هذه: قدّم طلبًا جديدًا.",
            "This contact data was already released: make a new request.",
        ),
        Clash::ReleaseExpired => say(
            lang,
            "L'approbation date de plus de 24 heures : faites une nouvelle demande.",
            "مرّ على الموافقة أكثر من 24 ساعة: قدّم طلبًا جديدًا.",
            "The approval is more than 24 hours old: make a new request.",
        ),
        Clash::PrincipalLabel => say(
            lang,
            "Ce nom de compte est déjà pris par un autre rôle.",
            "اسم الحساب هذا مستعمل لدور آخر.",
            "This principal label is taken by another role.",
        ),
        Clash::Declaration => say(
            lang,
            "Une déclaration de cet employeur pour cette période et ce type a été acceptée entre-temps : consultez la liste de ses déclarations.",
            "تم في الأثناء قبول تصريح لهذا المشغل عن نفس الفترة والنوع: اطلعوا على لائحة تصاريحه.",
            "A declaration of this employer for this period and form was accepted meanwhile: see its declarations.",
        ),
        Clash::RotationUnfinished => say(
            lang,
            "Une rotation des clés est en cours : reprenez-la (daman keys rotate --resume).",
            "تدوير المفاتيح جارٍ: أكملوه (daman keys rotate --resume).",
            "A key rotation is under way: resume it (daman keys rotate --resume).",
        ),
        Clash::ClaimDecided => say(
            lang,
            "Cette déclaration d'emploi a déjà été tranchée.",
            "سبق البت في هذا التصريح بالتشغيل.",
            "This employment claim was decided already.",
        ),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(Envelope { error: self.body })).into_response();
        let retry = match (self.retry_after, self.status) {
            (Some(s), _) => Some(s),
            (None, StatusCode::SERVICE_UNAVAILABLE) => Some(1),
            _ => None,
        };
        if let Some(s) = retry {
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(s),
            );
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_missing_thing_and_every_clash_has_its_own_message_in_each_language() {
        for lang in [Lang::Fr, Lang::Ar, Lang::En] {
            let missing: HashSet<String> = Missing::ALL.iter().map(|m| missing(*m, lang)).collect();
            assert_eq!(missing.len(), Missing::ALL.len(), "{lang:?}");
            let clashes: HashSet<String> = Clash::ALL.iter().map(|c| clash(*c, lang)).collect();
            assert_eq!(clashes.len(), Clash::ALL.len(), "{lang:?}");
        }
        // A principal and a release are not persons.
        let person = missing(Missing::Person, Lang::En);
        assert_ne!(missing(Missing::Principal, Lang::En), person);
        assert_ne!(missing(Missing::Release, Lang::En), person);
    }
}
