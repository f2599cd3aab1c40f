//! What registry commands take and give: inputs arrive as text and are validated here, all at
//! once (every broken field and rule in one answer).

use domain::{Cin, Date, Ice, PersonField, Phone, Rib, Rule, ValidationError};
use kernel::AppError;
use serde::{Deserialize, Serialize};

/// An employer to affiliate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEmployer {
    pub name: String,
    pub activity: String,
    pub city: String,
    pub ice: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EmployerCreated {
    #[serde(serialize_with = "kernel::id_string::serialize")]
    pub employer_id: i64,
    pub affiliate_number: String,
}

/// A person to immatriculate. Latin names as on the CIN; Arabic names in Arabic script.
/// `Debug` prints no value.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPerson {
    pub cin: String,
    pub last_name: String,
    pub first_name: String,
    pub last_name_ar: String,
    pub first_name_ar: String,
    pub birth_date: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub rib: Option<String>,
    #[serde(default)]
    pub children: u8,
}

#[derive(Clone, Serialize, PartialEq, Eq)]
pub struct PersonCreated {
    #[serde(serialize_with = "kernel::id_string::serialize")]
    pub person_id: i64,
    pub immatriculation: String,
}

impl std::fmt::Debug for NewPerson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPerson(…)")
    }
}

impl std::fmt::Debug for PersonCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonCreated")
            .field("person_id", &self.person_id)
            .finish_non_exhaustive()
    }
}

/// Collects every validation error of one input instead of stopping at the first.
#[derive(Default)]
pub(crate) struct Checks(pub(crate) Vec<ValidationError>);

impl Checks {
    pub(crate) fn take<T>(&mut self, r: Result<T, ValidationError>) -> Option<T> {
        r.map_err(|e| self.0.push(e)).ok()
    }

    pub(crate) fn text(&mut self, field: &'static str, s: &str, max: usize) -> Option<String> {
        let t = s.trim();
        if t.is_empty() {
            self.0.push(ValidationError::new(field, Rule::Required));
            None
        } else if t.chars().count() > max {
            self.0.push(ValidationError::new(field, Rule::TooLong(max)));
            None
        } else {
            Some(t.to_string())
        }
    }

    pub(crate) fn finish(self) -> Result<(), AppError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(AppError::Invalid(self.0))
        }
    }
}

/// New contact data; `None` keeps what is on record.
#[derive(Debug, Default, Clone, Copy)]
pub struct ContactChange<'a> {
    pub phone: Option<&'a str>,
    pub email: Option<&'a str>,
    pub address: Option<&'a str>,
}

pub(crate) fn email(s: &str) -> Result<String, ValidationError> {
    let s = s.trim();
    let ok = s.len() <= 254
        && !s.contains(char::is_whitespace)
        && s.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(ValidationError::new("email", Rule::EmailShape))
    }
}

/// A person's fields, validated and in their canonical text form.
pub(crate) struct ValidPerson {
    pub(crate) cin: Cin,
    pub(crate) fields: Vec<(PersonField, String)>,
}

pub(crate) fn validate_person(p: &NewPerson) -> Result<ValidPerson, AppError> {
    let mut c = Checks::default();
    let cin = c.take(Cin::parse(&p.cin));
    let last = c.text("last_name", &p.last_name, 60);
    let first = c.text("first_name", &p.first_name, 60);
    let last_ar = c.text("last_name_ar", &p.last_name_ar, 60);
    let first_ar = c.text("first_name_ar", &p.first_name_ar, 60);
    let birth = c.take(Date::parse("birth_date", &p.birth_date));
    let phone = p.phone.as_deref().and_then(|s| c.take(Phone::parse(s)));
    let email = p.email.as_deref().and_then(|s| c.take(email(s)));
    let address = p.address.as_deref().and_then(|s| c.text("address", s, 120));
    let rib = p.rib.as_deref().and_then(|s| c.take(Rib::parse(s)));
    if p.children > 30 {
        c.0.push(ValidationError::new("children", Rule::TooLong(2)));
    }
    c.finish()?;
    let (Some(cin), Some(last), Some(first), Some(last_ar), Some(first_ar), Some(birth)) =
        (cin, last, first, last_ar, first_ar, birth)
    else {
        return Err(AppError::Invalid(vec![]));
    };
    let mut fields = vec![
        (PersonField::Cin, cin.as_str().to_string()),
        (PersonField::LastName, last),
        (PersonField::FirstName, first),
        (PersonField::LastNameAr, last_ar),
        (PersonField::FirstNameAr, first_ar),
        (PersonField::BirthDate, birth.to_string()),
        (PersonField::Children, p.children.to_string()),
    ];
    if let Some(v) = phone {
        fields.push((PersonField::Phone, v.as_str().to_string()));
    }
    if let Some(v) = email {
        fields.push((PersonField::Email, v));
    }
    if let Some(v) = address {
        fields.push((PersonField::Address, v));
    }
    if let Some(v) = rib {
        fields.push((PersonField::Rib, v.as_str().to_string()));
    }
    Ok(ValidPerson { cin, fields })
}

pub(crate) fn validate_employer(
    e: &NewEmployer,
) -> Result<(String, String, String, Ice), AppError> {
    let mut c = Checks::default();
    let name = c.text("name", &e.name, 40);
    let activity = c.text("activity", &e.activity, 40);
    let city = c.text("city", &e.city, 20);
    let ice = c.take(Ice::parse(&e.ice));
    c.finish()?;
    match (name, activity, city, ice) {
        (Some(n), Some(a), Some(c), Some(i)) => Ok((n, a, c, i)),
        _ => Err(AppError::Invalid(vec![])),
    }
}
