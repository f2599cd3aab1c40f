//! The gate: the one way personal data leaves storage in plaintext.

use crate::capability::Actor;
use crate::columns::{CIN_INDEX, IMMATRICULATION_INDEX, person_column};
use crate::event::Audit;
use crate::principal::Principal;
use crate::{AppError, Kernel, Missing};
use domain::Phone;
use domain::access::{Facts, decide};
use domain::{
    Cin, Decision, DenyReason, Immatriculation, PersonField, Purpose, Role, Rule, ValidationError,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use store::{Lookup, PersonCipher};

/// Leave to decrypt: proof that a read was admitted here (policy, budget, and its audit event
/// durable) or that a system read was recorded with its reason ([`Kernel::recorded_read`]).
/// Only this module makes one (its field is private to it), it is neither `Clone` nor
/// `Copy`, and [`Kernel::unseal`] / [`Kernel::unseal_bound`] take one: outside the gate no code
/// can decrypt personal data, since the capability crates hold the keys only as a
/// [`crate::keys::Sealer`], which cannot open.
///
/// ```compile_fail
/// // A capability crate cannot make a pass of its own…
/// let pass = kernel::gate::Pass { _audited: () };
/// ```
///
/// ```compile_fail
/// // …nor open a ciphertext with the keys it holds.
/// fn steal(k: &kernel::Kernel, blob: &[u8]) {
///     let _ = k.keyring().decrypt(kernel::columns::CLAIM_DECLARED, 1, blob);
/// }
/// ```
///
/// ```
/// // (Sealing with them, written the same way, compiles.)
/// fn seal(k: &kernel::Kernel, plain: &[u8]) {
///     let _ = k.keyring().encrypt(kernel::columns::CLAIM_DECLARED, 1, plain);
/// }
/// ```
#[derive(Debug)]
#[must_use = "a pass is what opens the ciphertexts it was admitted for"]
pub struct Pass {
    _audited: (),
}

/// Authentication factor material: TOTP seeds, passkeys' state, the phones SMS codes go to (a
/// factor's, an enrolment's) and an E-ID flow's verifier and nonce. Opened by the login,
/// enrolment and factor flows that use them, each audited as an authentication event; never
/// shown (a factor's phone is listed masked).
const SECRETS: [vault::Column; 3] = [
    crate::columns::FACTOR_SECRET,
    crate::columns::ENROLMENT_PHONE,
    crate::columns::EID_SECRET,
];

impl Kernel {
    /// Decrypts a ciphertext of `col` bound to `row`, for a read the pass admitted.
    pub fn unseal(
        &self,
        _pass: &Pass,
        col: vault::Column,
        row: i64,
        blob: &[u8],
    ) -> Result<Vec<u8>, AppError> {
        Ok(self.inner.keys.ring().decrypt(col, row, blob)?)
    }

    /// [`Kernel::unseal`] for a ciphertext also bound to `context` (a block's directory).
    pub fn unseal_bound(
        &self,
        _pass: &Pass,
        col: vault::Column,
        row: i64,
        context: &[u8],
        blob: &[u8],
    ) -> Result<Vec<u8>, AppError> {
        Ok(self
            .inner
            .keys
            .ring()
            .decrypt_bound(col, row, context, blob)?)
    }

    /// Decrypts authentication factor material ([`SECRETS`]); any other column is refused.
    pub fn unseal_secret(
        &self,
        col: vault::Column,
        row: i64,
        blob: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, AppError> {
        if !SECRETS.contains(&col) {
            return Err(AppError::Internal("not an authentication secret"));
        }
        Ok(zeroize::Zeroizing::new(
            self.inner.keys.ring().decrypt(col, row, blob)?,
        ))
    }

    /// A read whose audit event the caller words: the system's own work (an SMS to send, a RIB
    /// change to apply, the import's checks, with the reason), or an operator's counted export.
    /// `event` is written durably, then the pass is given.
    pub async fn recorded_read(&self, event: Audit, request_id: &str) -> Result<Pass, AppError> {
        event.write(self, request_id).await?;
        Ok(Pass { _audited: () })
    }
}

/// Whom a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// By the id returned at immatriculation (a row id: knowing it grants nothing).
    Person(i64),
    /// By national identity card number (blind index, exact match).
    Cin(Cin),
    /// By immatriculation number (blind index, exact match).
    Immatriculation(Immatriculation),
}

/// A read of personal data through the gate.
#[derive(Debug, Clone)]
pub struct RevealRequest {
    pub subject: Subject,
    pub purpose: Purpose,
    /// Empty means every field the role may see.
    pub fields: Vec<PersonField>,
    /// Unmasked values; a separate, logged act that the policy may refuse.
    pub full: bool,
}

/// What the gate returns: the requested fields, masked unless `full`. `Debug` prints no value.
#[derive(Clone, Serialize, PartialEq, Eq)]
pub struct PersonView {
    #[serde(serialize_with = "id_string::serialize")]
    pub person_id: i64,
    pub full: bool,
    /// `null` where the field is not on record.
    pub fields: BTreeMap<PersonField, Option<String>>,
}

impl std::fmt::Debug for PersonView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonView")
            .field("person_id", &self.person_id)
            .field("full", &self.full)
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Ids travel as strings: they are 63-bit, beyond what JavaScript numbers hold exactly.
pub mod id_string {
    use serde::Serializer;

    pub fn serialize<S: Serializer>(id: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&id.to_string())
    }
}

/// What a read asks the gate: the audit entry's action, the purpose, the fields, and whether
/// unmasked.
pub struct Asking<'a> {
    pub action: &'static str,
    pub purpose: Purpose,
    pub fields: &'a [PersonField],
    pub full: bool,
}

impl Kernel {
    /// Finds the subject's record. Blind-index candidates are decrypted and compared, so a
    /// truncated-index coincidence never returns the wrong person.
    pub async fn resolve_record(
        &self,
        subject: &Subject,
    ) -> Result<Option<(i64, PersonCipher)>, AppError> {
        let (lookup, field, value) = match subject {
            Subject::Person(id) => {
                return Ok(self.inner.store.person(*id).await?.map(|c| (*id, c)));
            }
            Subject::Cin(c) => (Lookup::Cin, PersonField::Cin, c.as_str().to_string()),
            Subject::Immatriculation(i) => (
                Lookup::Immatriculation,
                PersonField::Immatriculation,
                i.to_string(),
            ),
        };
        let index = if lookup == Lookup::Cin {
            CIN_INDEX
        } else {
            IMMATRICULATION_INDEX
        };
        let bidx = self.keyring().blind_index(index, value.as_bytes())?;
        for (id, cipher) in self.inner.lookups.find(lookup, bidx.to_vec()).await? {
            let stored = cipher
                .get(field)
                .ok_or(store::StoreError::Corrupt("identifier missing"))?;
            if self
                .inner
                .keys
                .ring()
                .decrypt(person_column(field), id, stored)?
                == value.as_bytes()
            {
                return Ok(Some((id, cipher)));
            }
        }
        Ok(None)
    }

    pub async fn resolve(&self, subject: &Subject) -> Result<Option<i64>, AppError> {
        Ok(self.resolve_record(subject).await?.map(|(id, _)| id))
    }

    /// A field of a person's ciphertexts, in clear, for daman itself: to send a code or a
    /// notice to the phone, to write the names on a préétabli; and the contact data a breach
    /// notification needs, released under four eyes (`release.rs`), the only case where it is
    /// shown to someone. The caller's audit event, written before, names the fields: its pass
    /// ([`Kernel::recorded_read`]) is what this takes.
    pub fn system_text(
        &self,
        _pass: &Pass,
        person: i64,
        cipher: &PersonCipher,
        field: PersonField,
    ) -> Result<Option<String>, AppError> {
        let Some(ct) = cipher.get(field) else {
            return Ok(None);
        };
        let plain = self
            .inner
            .keys
            .ring()
            .decrypt(person_column(field), person, ct)?;
        String::from_utf8(plain)
            .map(Some)
            .map_err(|_| store::StoreError::Corrupt("person field").into())
    }

    /// The phone on record, for daman to send a code or a notice to ([`Kernel::system_text`]).
    pub fn phone_in(
        &self,
        pass: &Pass,
        person: i64,
        cipher: &PersonCipher,
    ) -> Result<Option<Phone>, AppError> {
        self.system_text(pass, person, cipher, PersonField::Phone)?
            .map(|p| Phone::parse(&p).map_err(AppError::from))
            .transpose()
    }

    /// [`Kernel::phone_in`] for a person not yet loaded.
    pub async fn phone_on_record(
        &self,
        pass: &Pass,
        person: i64,
    ) -> Result<Option<Phone>, AppError> {
        match self.inner.store.person(person).await? {
            Some(cipher) => self.phone_in(pass, person, &cipher),
            None => Ok(None),
        }
    }

    /// The facts the policy needs about `who` and `person`, asking storage only what the role needs.
    pub async fn facts(
        &self,
        who: &Principal,
        person: Option<i64>,
        purpose: Purpose,
    ) -> Result<Facts, AppError> {
        let mut f = Facts {
            locked: who.locked,
            ..Facts::default()
        };
        let Some(person) = person else { return Ok(f) };
        match who.role {
            Role::Insured => f.is_self = who.person_id == Some(person),
            Role::EmployerUser => {
                if let Some(employer) = who.employer_id {
                    let today = self.now().date().to_string();
                    f.employs = self.inner.store.employs(employer, person, &today).await?;
                }
            }
            Role::Agent if purpose == Purpose::CaseReview => {
                f.open_case = self.has_open_case(who.id, person).await?;
            }
            Role::Agent | Role::SecurityOfficer => {}
        }
        Ok(f)
    }

    /// The gate's decision, made durable before anything is decrypted: the policy for `who`
    /// and what it is asking about `person` (`None`: no such person), the decoys, the read
    /// budget, then the audit entry, for a denial too. Returns the person admitted.
    ///
    /// To anyone but an agent, "no such person" and "not yours" are the same denial, so the gate
    /// cannot be used to learn whether a CIN or number is registered.
    pub async fn admit(
        &self,
        who: &Principal,
        person: Option<i64>,
        asking: Asking<'_>,
        request_id: &str,
    ) -> Result<(i64, Pass), AppError> {
        let Asking {
            action,
            purpose,
            fields,
            full,
        } = asking;
        // The keyed pseudonym the decoy list and the read budgets know the person by.
        let subject = person.map(|p| self.keyring().person_pseudonym(p));
        let facts = self.facts(who, person, purpose).await?;
        let decision = match person {
            // A decoy: whoever looks it up is locked, whatever the policy would say.
            Some(_) if subject.is_some_and(|s| self.is_decoy_subject(&s)) => {
                self.decoy_touched(Some(who), "read", request_id).await?;
                Decision::Deny(DenyReason::Honeytoken)
            }
            Some(_) => decide(who.role, purpose, facts, fields, full),
            None if who.locked => Decision::Deny(DenyReason::Locked),
            None => Decision::Deny(DenyReason::NotSelf),
        };
        // The policy allows it: the read budget must allow it too.
        let decision = match (decision, subject) {
            (Decision::Allow, Some(s)) => {
                match self.spend_read_budget(who, &s, request_id).await? {
                    Some(reason) => Decision::Deny(reason),
                    None => Decision::Allow,
                }
            }
            (d, _) => d,
        };
        let audit = Audit::command(who, action, person)
            .fields(fields)
            .purpose(purpose);
        let reason = match (decision, person) {
            (Decision::Allow, Some(id)) => {
                audit.write(self, request_id).await?;
                return Ok((id, Pass { _audited: () }));
            }
            (Decision::Deny(r), _) => r,
            (Decision::Allow, None) => DenyReason::NotSelf,
        };
        let not_found = person.is_none() && reason != DenyReason::Locked;
        let audit = if not_found {
            audit.not_found()
        } else {
            audit.denied(reason)
        };
        audit.write(self, request_id).await?;
        Err(if not_found && who.role == Role::Agent {
            AppError::NotFound(Missing::Person)
        } else {
            AppError::Denied(reason)
        })
    }

    /// The gate. Resolves the subject, decides, makes the audit entry durable (for denials too),
    /// then decrypts the requested fields and masks them unless a full reveal was allowed.
    pub async fn reveal(
        &self,
        who: &Principal,
        req: &RevealRequest,
        request_id: &str,
    ) -> Result<PersonView, AppError> {
        let fields: Vec<PersonField> = if !req.fields.is_empty() {
            let mut f = req.fields.clone();
            f.sort();
            f.dedup();
            f
        } else if who.role == Role::EmployerUser {
            PersonField::ALL
                .into_iter()
                .filter(|f| f.employer_visible())
                .collect()
        } else {
            PersonField::ALL.to_vec()
        };
        let record = self.resolve_record(&req.subject).await?;
        let person = record.as_ref().map(|(id, _)| *id);
        let asking = Asking {
            action: if req.full { "reveal" } else { "read" },
            purpose: req.purpose,
            fields: &fields,
            full: req.full,
        };
        let (admitted, _) = self.admit(who, person, asking, request_id).await?;
        let Some((id, cipher)) = record.filter(|(id, _)| *id == admitted) else {
            return Err(AppError::NotFound(Missing::Person));
        };
        // The identifier the person was found by was just decrypted and compared equal: it is
        // not decrypted a second time.
        let known = match &req.subject {
            Subject::Cin(c) => Some((PersonField::Cin, c.as_str().to_string())),
            Subject::Immatriculation(i) => Some((PersonField::Immatriculation, i.to_string())),
            Subject::Person(_) => None,
        };
        let mut out = BTreeMap::new();
        for f in fields {
            let value = match cipher.get(f) {
                Some(_) if known.as_ref().is_some_and(|(k, _)| *k == f) => {
                    let text = known.as_ref().map(|(_, v)| v.clone()).unwrap_or_default();
                    Some(if req.full { text } else { f.mask(&text) })
                }
                Some(ct) => {
                    let plain = self.inner.keys.ring().decrypt(person_column(f), id, ct)?;
                    let text = String::from_utf8(plain)
                        .map_err(|_| store::StoreError::Corrupt("field is not UTF-8"))?;
                    Some(if req.full { text } else { f.mask(&text) })
                }
                None => None,
            };
            out.insert(f, value);
        }
        Ok(PersonView {
            person_id: id,
            full: req.full,
            fields: out,
        })
    }
}

/// Days during which a case opens its person's full record to its agent.
pub const CASE_DAYS: i64 = 30;

impl Kernel {
    /// Whether `agent` has an open case on `person` opened within the last [`CASE_DAYS`] days.
    /// A read that names many persons at once: an employer's préétabli, a declaration's file,
    /// lines or receipt, the errors of a rejected file. The caller's capability decided that
    /// `actor` may read it (its own employer's); here, as for one person at the gate: a decoy
    /// among them refuses the whole read and locks the reader; each person is spent from the
    /// reader's read budget (`who`: the operator at the command line has none); and each is
    /// named in an audit event of its own (by pseudonym, with the purpose, the fields and
    /// `detail`), all durable before the caller decrypts anything, so the breach report and
    /// "who read my data" list exactly them.
    #[allow(clippy::too_many_arguments)]
    pub async fn admit_named(
        &self,
        actor: Actor,
        who: Option<&Principal>,
        persons: &[i64],
        action: &'static str,
        purpose: Purpose,
        fields: &[PersonField],
        detail: &str,
        request_id: &str,
    ) -> Result<Pass, AppError> {
        let refuse = |reason: DenyReason| {
            Audit::by(actor, action)
                .purpose(purpose)
                .denied(reason)
                .detail(format!("{detail} persons={}", persons.len()))
        };
        if who.is_some_and(|p| p.locked) {
            refuse(DenyReason::Locked).write(self, request_id).await?;
            return Err(AppError::Denied(DenyReason::Locked));
        }
        if self.has_decoys() && persons.iter().any(|p| self.is_decoy_person(*p)) {
            self.decoy_touched(who, action, request_id).await?;
            return Err(AppError::Denied(DenyReason::Honeytoken));
        }
        if let Some(p) = who {
            for person in persons {
                let subject = self.keyring().person_pseudonym(*person);
                if let Some(reason) = self.spend_read_budget(p, &subject, request_id).await? {
                    refuse(reason).write(self, request_id).await?;
                    return Err(AppError::Denied(reason));
                }
            }
        }
        let events = persons
            .iter()
            .map(|p| {
                Audit::by(actor, action)
                    .subject(*p)
                    .purpose(purpose)
                    .fields(fields)
                    .detail(detail)
            })
            .collect();
        Audit::write_all(events, self, request_id).await?;
        Ok(Pass { _audited: () })
    }

    /// The registry's names of `persons` ("LAST FIRST", in Latin script), for daman to compare
    /// a name an employer declared with: never shown to anyone. Read for the system's own
    /// work, so audited first as the `system` actor with `reason`, then decrypted through
    /// [`Kernel::system_text`].
    pub async fn registry_names(
        &self,
        persons: &[i64],
        reason: &str,
        request_id: &str,
    ) -> Result<BTreeMap<i64, String>, AppError> {
        let mut names = BTreeMap::new();
        let event = Audit::counted(Actor::system(), "match_names", persons.len())
            .fields(&[PersonField::LastName, PersonField::FirstName])
            .detail(format!("count={} reason={reason}", persons.len()));
        let pass = self.recorded_read(event, request_id).await?;
        for (pid, c) in self.inner.store.persons_by_id(persons).await? {
            let text = |f| {
                self.system_text(&pass, pid, &c, f)
                    .map(Option::unwrap_or_default)
            };
            let name = format!(
                "{} {}",
                text(PersonField::LastName)?,
                text(PersonField::FirstName)?
            );
            names.insert(pid, name);
        }
        Ok(names)
    }

    pub async fn has_open_case(&self, agent: i64, person: i64) -> Result<bool, AppError> {
        let since = self.now().0 - CASE_DAYS * 86_400_000_000;
        Ok(self.inner.store.has_open_case(agent, person, since).await?)
    }

    /// The keyed pseudonym the audit log names a person by, in hex.
    pub fn person_pseudonym(&self, person_id: i64) -> String {
        vault::hex(&self.keyring().person_pseudonym(person_id))
    }
}

/// A request body's view of [`RevealRequest`], shared by the API and the command line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevealInput {
    #[serde(default)]
    pub person_id: Option<String>,
    #[serde(default)]
    pub cin: Option<String>,
    #[serde(default)]
    pub immatriculation: Option<String>,
    pub purpose: Purpose,
    #[serde(default)]
    pub fields: Vec<PersonField>,
    #[serde(default)]
    pub full: bool,
}

impl Subject {
    /// Exactly one of the three ways to name a person, validated.
    pub fn from_parts(
        person_id: Option<&str>,
        cin: Option<&str>,
        immatriculation: Option<&str>,
    ) -> Result<Subject, AppError> {
        match (person_id, cin, immatriculation) {
            (Some(id), None, None) => id
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .map(Subject::Person)
                .ok_or_else(|| ValidationError::new("person_id", Rule::Digits(19)).into()),
            (None, Some(cin), None) => Ok(Subject::Cin(Cin::parse(cin)?)),
            (None, None, Some(n)) => Ok(Subject::Immatriculation(Immatriculation::parse(n)?)),
            _ => Err(ValidationError::new("subject", Rule::UnknownValue).into()),
        }
    }
}

impl RevealInput {
    pub fn into_request(self) -> Result<RevealRequest, AppError> {
        let subject = Subject::from_parts(
            self.person_id.as_deref(),
            self.cin.as_deref(),
            self.immatriculation.as_deref(),
        )?;
        Ok(RevealRequest {
            subject,
            purpose: self.purpose,
            fields: self.fields,
            full: self.full,
        })
    }
}
