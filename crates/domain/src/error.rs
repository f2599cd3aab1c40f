//! Validation errors: which field, which rule, and the message in the reader's language.

use std::fmt;

/// The languages daman speaks to people in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Fr,
    Ar,
    En,
}

impl Lang {
    /// Picks the first supported language of an `Accept-Language` header value; French otherwise.
    pub fn from_accept_language(header: &str) -> Lang {
        for part in header.split(',') {
            let tag = part
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            let primary = tag.split('-').next().unwrap_or("");
            match primary {
                "fr" => return Lang::Fr,
                "ar" => return Lang::Ar,
                "en" => return Lang::En,
                _ => {}
            }
        }
        Lang::Fr
    }
}

/// A rule an input broke. Each rule has a stable code and a message in French, Arabic and English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Exactly this many decimal digits.
    Digits(usize),
    /// The RIB's 2-digit key does not match (97-modulus).
    RibKey,
    /// CIN: one or two letters then 1 to 6 digits.
    CinShape,
    /// Moroccan number: +212 then 9 digits starting 5 to 9.
    PhoneShape,
    /// A period written YYYYMM with a month 01–12.
    PeriodShape,
    /// A date written YYYY-MM-DD that exists.
    DateShape,
    /// An e-mail address: one `@`, no spaces.
    EmailShape,
    /// Must not be empty.
    Required,
    /// At most this many characters.
    TooLong(usize),
    /// An amount that must not be negative.
    NotNegative,
    /// A value that is not one of the accepted words.
    UnknownValue,
    /// No parameter table covers the period.
    NoParameters,
    /// An amount too large to compute with.
    Overflow,
    /// A password shorter than this many characters.
    TooShort(usize),
    /// A password on the list of common and breached passwords.
    CommonPassword,
    /// A password made of the fund's name, the login or the person's own name.
    ContextPassword,
    /// A one-time code: this many digits.
    CodeShape(usize),
    /// A time window that must be over: its start before its end, its end not in the future.
    PastWindow,
}

impl Rule {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Rule::Digits(_) => "digits",
            Rule::RibKey => "rib_key",
            Rule::CinShape => "cin_shape",
            Rule::PhoneShape => "phone_shape",
            Rule::PeriodShape => "period_shape",
            Rule::DateShape => "date_shape",
            Rule::EmailShape => "email_shape",
            Rule::Required => "required",
            Rule::TooLong(_) => "too_long",
            Rule::NotNegative => "not_negative",
            Rule::UnknownValue => "unknown_value",
            Rule::NoParameters => "no_parameters",
            Rule::Overflow => "overflow",
            Rule::TooShort(_) => "too_short",
            Rule::CommonPassword => "common_password",
            Rule::ContextPassword => "context_password",
            Rule::CodeShape(_) => "code_shape",
            Rule::PastWindow => "past_window",
        }
    }

    /// The rule in words, in `lang`.
    pub fn describe(&self, lang: Lang) -> String {
        match (self, lang) {
            (Rule::Digits(n), Lang::Fr) => format!("doit compter exactement {n} chiffres"),
            (Rule::Digits(n), Lang::Ar) => format!("يجب أن يتكون من {n} أرقام بالضبط"),
            (Rule::Digits(n), Lang::En) => format!("must be exactly {n} digits"),
            (Rule::RibKey, Lang::Fr) => {
                "clé RIB invalide (les 24 chiffres modulo 97 doivent donner 0)".into()
            }
            (Rule::RibKey, Lang::Ar) => {
                "مفتاح RIB غير صحيح (باقي قسمة الأرقام الـ24 على 97 يجب أن يكون 0)".into()
            }
            (Rule::RibKey, Lang::En) => "wrong RIB key (the 24 digits modulo 97 must be 0)".into(),
            (Rule::CinShape, Lang::Fr) => {
                "une ou deux lettres puis 1 à 6 chiffres (ex. AB123456)".into()
            }
            (Rule::CinShape, Lang::Ar) => "حرف أو حرفان ثم من 1 إلى 6 أرقام (مثال AB123456)".into(),
            (Rule::CinShape, Lang::En) => {
                "one or two letters then 1 to 6 digits (e.g. AB123456)".into()
            }
            (Rule::PhoneShape, Lang::Fr) => {
                "numéro marocain : +212 puis 9 chiffres commençant par 5 à 9".into()
            }
            (Rule::PhoneShape, Lang::Ar) => "رقم مغربي: ‎+212 ثم 9 أرقام تبدأ بـ 5 إلى 9".into(),
            (Rule::PhoneShape, Lang::En) => {
                "Moroccan number: +212 then 9 digits starting with 5 to 9".into()
            }
            (Rule::PeriodShape, Lang::Fr) => "période au format AAAAMM (mois 01 à 12)".into(),
            (Rule::PeriodShape, Lang::Ar) => "الفترة بصيغة AAAAMM (الشهر من 01 إلى 12)".into(),
            (Rule::PeriodShape, Lang::En) => "period as YYYYMM (month 01 to 12)".into(),
            (Rule::DateShape, Lang::Fr) => "date existante au format AAAA-MM-JJ".into(),
            (Rule::DateShape, Lang::Ar) => "تاريخ صحيح بصيغة AAAA-MM-JJ".into(),
            (Rule::DateShape, Lang::En) => "a real date as YYYY-MM-DD".into(),
            (Rule::EmailShape, Lang::Fr) => "adresse e-mail invalide (nom@domaine)".into(),
            (Rule::EmailShape, Lang::Ar) => "عنوان بريد إلكتروني غير صحيح (name@domain)".into(),
            (Rule::EmailShape, Lang::En) => "not an e-mail address (name@domain)".into(),
            (Rule::Required, Lang::Fr) => "obligatoire".into(),
            (Rule::Required, Lang::Ar) => "إلزامي".into(),
            (Rule::Required, Lang::En) => "required".into(),
            (Rule::TooLong(n), Lang::Fr) => format!("au plus {n} caractères"),
            (Rule::TooLong(n), Lang::Ar) => format!("{n} حرفًا على الأكثر"),
            (Rule::TooLong(n), Lang::En) => format!("at most {n} characters"),
            (Rule::NotNegative, Lang::Fr) => "ne peut pas être négatif".into(),
            (Rule::NotNegative, Lang::Ar) => "لا يمكن أن يكون سالبًا".into(),
            (Rule::NotNegative, Lang::En) => "must not be negative".into(),
            (Rule::UnknownValue, Lang::Fr) => "valeur non reconnue".into(),
            (Rule::UnknownValue, Lang::Ar) => "قيمة غير معروفة".into(),
            (Rule::UnknownValue, Lang::En) => "unknown value".into(),
            (Rule::PastWindow, Lang::Fr) => {
                "la période doit être passée : son début avant sa fin, sa fin pas dans le futur".into()
            }
            (Rule::PastWindow, Lang::Ar) => {
                "يجب أن تكون الفترة منتهية: بدايتها قبل نهايتها ونهايتها ليست في المستقبل".into()
            }
            (Rule::PastWindow, Lang::En) => {
                "the window must be over: its start before its end, its end not in the future".into()
            }
            (Rule::NoParameters, Lang::Fr) => "aucun barème en vigueur pour cette période".into(),
            (Rule::NoParameters, Lang::Ar) => "لا توجد جداول نسب سارية لهذه الفترة".into(),
            (Rule::NoParameters, Lang::En) => "no rate table in force for this period".into(),
            (Rule::Overflow, Lang::Fr) => "montant trop grand".into(),
            (Rule::Overflow, Lang::Ar) => "المبلغ كبير جدًا".into(),
            (Rule::Overflow, Lang::En) => "amount too large".into(),
            (Rule::TooShort(n), Lang::Fr) => format!(
                "au moins {n} caractères ; une phrase de plusieurs mots est plus facile à retenir"
            ),
            (Rule::TooShort(n), Lang::Ar) => {
                format!("{n} حرفًا على الأقل؛ جملة من عدة كلمات أسهل في التذكر")
            }
            (Rule::TooShort(n), Lang::En) => {
                format!("at least {n} characters; a phrase of several words is easier to remember")
            }
            (Rule::CommonPassword, Lang::Fr) => {
                "ce mot de passe figure parmi les plus courants ou dans des fuites connues : choisissez-en un autre".into()
            }
            (Rule::CommonPassword, Lang::Ar) => {
                "كلمة المرور هذه من الأكثر شيوعًا أو ظهرت في تسريبات معروفة: اختر غيرها".into()
            }
            (Rule::CommonPassword, Lang::En) => {
                "this password is among the most common or in known breaches: choose another".into()
            }
            (Rule::ContextPassword, Lang::Fr) => {
                "ne doit pas être faite du nom de la caisse, de votre CIN, de votre numéro, de votre nom, de votre date de naissance ou de votre téléphone".into()
            }
            (Rule::ContextPassword, Lang::Ar) => {
                "يجب ألا تتكون من اسم الصندوق أو رقم بطاقتك الوطنية أو رقم تسجيلك أو اسمك أو تاريخ ميلادك أو هاتفك".into()
            }
            (Rule::ContextPassword, Lang::En) => {
                "must not be made of the fund's name, your CIN, your number, your name, your birth date or your phone".into()
            }
            (Rule::CodeShape(n), Lang::Fr) => format!("code de {n} chiffres"),
            (Rule::CodeShape(n), Lang::Ar) => format!("رمز من {n} أرقام"),
            (Rule::CodeShape(n), Lang::En) => format!("a {n}-digit code"),
        }
    }
}

/// An input that broke a rule. Names the field, never echoes the value (it may be personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    pub field: &'static str,
    pub rule: Rule,
}

impl ValidationError {
    pub fn new(field: &'static str, rule: Rule) -> Self {
        ValidationError { field, rule }
    }

    /// "cin : une ou deux lettres…" in the reader's language.
    pub fn message(&self, lang: Lang) -> String {
        format!("{} : {}", self.field, self.rule.describe(lang))
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.rule.describe(Lang::En))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_first_supported() {
        assert_eq!(Lang::from_accept_language("ar-MA,fr;q=0.8"), Lang::Ar);
        assert_eq!(Lang::from_accept_language("de, en-GB;q=0.5"), Lang::En);
        assert_eq!(Lang::from_accept_language(""), Lang::Fr);
    }

    #[test]
    fn message_names_field_and_rule() {
        let e = ValidationError::new("rib", Rule::RibKey);
        assert!(e.message(Lang::Fr).starts_with("rib : clé RIB invalide"));
        assert_eq!(e.rule.code(), "rib_key");
    }
}
