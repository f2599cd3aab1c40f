//! The breach-impact report (docs/audit.md): from the audit log alone, every person whose data
//! was revealed to some principals during a window, which fields, when and by whom, with totals
//! per field and per category, and the notification list (pseudonyms).

use crate::Registry;
use domain::{DenyReason, PersonField, Role, Timestamp};
use kernel::hex;
use kernel::{Actor, AppError, Audit, Principal};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Events read per query.
const PAGE: i64 = 10_000;

/// Who asks for a report: a security officer through the API, or the operator at the command
/// line.
#[derive(Debug, Clone, Copy)]
pub enum Investigator<'a> {
    Officer(&'a Principal),
    Operator,
}

/// One person whose data was revealed, named by the audit log's keyed pseudonym.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExposedPerson {
    /// The pseudonym, in hex.
    pub subject: String,
    /// The fields revealed (API names), in [`PersonField::ALL`] order.
    pub fields: Vec<&'static str>,
    /// Their categories ([`category`]), for the notification list.
    #[serde(skip)]
    pub categories: Vec<&'static str>,
    /// Whether any value was revealed unmasked.
    pub full: bool,
    pub first_at: i64,
    pub last_at: i64,
    pub reads: u64,
    /// The principals it was revealed to.
    #[serde(serialize_with = "ids")]
    pub by: Vec<i64>,
    /// The audit entries (numbers) that record it, for `daman audit prove`.
    pub entries: Vec<u64>,
}

fn ids<S: serde::Serializer>(v: &[i64], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for id in v {
        seq.serialize_element(&id.to_string())?;
    }
    seq.end()
}

/// The report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreachReport {
    #[serde(serialize_with = "ids")]
    pub principals: Vec<i64>,
    pub from: i64,
    pub to: i64,
    /// Audit entries of these principals in the window.
    pub entries: u64,
    /// Reads refused in the window (attempts that revealed nothing).
    pub refused: u64,
    pub persons: Vec<ExposedPerson>,
    /// Distinct persons per field revealed.
    pub per_field: BTreeMap<&'static str, u64>,
    /// Distinct persons per category of field: identity, contact, bank, family.
    pub per_category: BTreeMap<&'static str, u64>,
}

/// A breach question's principals, sorted without repeats, and as the audit log writes them
/// (space-separated ids).
pub(crate) fn principal_set(principals: &[i64]) -> (Vec<i64>, String) {
    let mut ps = principals.to_vec();
    ps.sort_unstable();
    ps.dedup();
    let list = ps.iter().map(i64::to_string).collect::<Vec<_>>().join(" ");
    (ps, list)
}

/// The category a field belongs to, for the report's totals (and a notification's wording).
fn category(f: PersonField) -> &'static str {
    match f {
        PersonField::Immatriculation
        | PersonField::Cin
        | PersonField::LastName
        | PersonField::FirstName
        | PersonField::LastNameAr
        | PersonField::FirstNameAr
        | PersonField::BirthDate => "identity",
        PersonField::Phone | PersonField::Email | PersonField::Address => "contact",
        PersonField::Rib => "bank",
        PersonField::Children => "family",
    }
}

impl BreachReport {
    /// The notification list: one line per person, pseudonym first.
    pub fn csv(&self) -> String {
        let mut out =
            String::from("pseudonym,fields,categories,first_at,last_at,reads,principals\n");
        for p in &self.persons {
            let by: Vec<String> = p.by.iter().map(i64::to_string).collect();
            out.push_str(&format!(
                "{},{},{},{},{},{},{}\n",
                p.subject,
                p.fields.join(" "),
                p.categories.join(" "),
                p.first_at,
                p.last_at,
                p.reads,
                by.join(" ")
            ));
        }
        out
    }
}

impl Registry {
    /// Every person whose data was revealed to `principals` between `from` (included) and `to`
    /// (excluded), from the audit log alone: the gate's allowed reads and reveals. Only a
    /// security officer (or the operator) may ask; the request is audited.
    pub async fn breach_report(
        &self,
        who: Investigator<'_>,
        principals: &[i64],
        from: Timestamp,
        to: Timestamp,
        request_id: &str,
    ) -> Result<BreachReport, AppError> {
        let audit = match who {
            Investigator::Officer(p) => {
                let a = Audit::command(p, "breach_report", None);
                if p.role != Role::SecurityOfficer || p.locked {
                    a.denied(DenyReason::RoleHasNoAccess)
                        .write(&self.k, request_id)
                        .await?;
                    return Err(AppError::Denied(DenyReason::RoleHasNoAccess));
                }
                a
            }
            Investigator::Operator => {
                Audit::counted(Actor::operator(), "breach_report", principals.len())
            }
        };
        let (ps, list) = principal_set(principals);
        audit
            .detail(format!("principals={list} from={} to={}", from.0, to.0))
            .write(&self.k, request_id)
            .await?;
        self.exposure(ps, from, to).await
    }

    /// The report itself, from the audit log (`principals` sorted, without repeats): not
    /// audited here (the callers audit the request).
    pub(crate) async fn exposure(
        &self,
        ps: Vec<i64>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<BreachReport, AppError> {
        let mut report = BreachReport {
            principals: ps.clone(),
            from: from.0,
            to: to.0,
            entries: 0,
            refused: 0,
            persons: Vec::new(),
            per_field: BTreeMap::new(),
            per_category: BTreeMap::new(),
        };
        // Each person read: what was shown, the fields' bits, and whether their career was.
        let mut by_subject: HashMap<Vec<u8>, (ExposedPerson, i64, bool)> = HashMap::new();
        for p in &ps {
            let mut after = 0i64;
            loop {
                let events = self
                    .k
                    .store()
                    .principal_audit_events(*p, from.0, to.0, after, PAGE)
                    .await?;
                let Some(last) = events.last().map(|(s, _)| *s) else {
                    break;
                };
                for (seq, e) in &events {
                    report.entries += 1;
                    // A read of the person's record, or of their career (salaries, employers).
                    if !kernel::event::PERSON_READS.contains(&e.action.as_str()) {
                        continue;
                    }
                    let Some(subject) = &e.subject else {
                        continue;
                    };
                    if e.outcome != "allow" {
                        report.refused += 1;
                        continue;
                    }
                    let (x, bits, career) =
                        by_subject.entry(subject.clone()).or_insert_with(|| {
                            (
                                ExposedPerson {
                                    subject: hex(subject),
                                    fields: Vec::new(),
                                    categories: Vec::new(),
                                    full: false,
                                    first_at: e.at,
                                    last_at: e.at,
                                    reads: 0,
                                    by: Vec::new(),
                                    entries: Vec::new(),
                                },
                                0,
                                false,
                            )
                        });
                    *bits |= e.fields;
                    *career |= kernel::event::SALARY_READS.contains(&e.action.as_str());
                    x.full |= e.action == "reveal";
                    x.first_at = x.first_at.min(e.at);
                    x.last_at = x.last_at.max(e.at);
                    x.reads += 1;
                    if !x.by.contains(p) {
                        x.by.push(*p);
                    }
                    x.entries.push(*seq as u64);
                }
                after = last;
            }
        }
        for (_, (mut x, bits, career)) in by_subject {
            let fields = PersonField::from_bits(bits);
            let mut cats: Vec<&'static str> = fields.iter().map(|f| category(*f)).collect();
            if career {
                cats.push("career");
            }
            cats.sort_unstable();
            cats.dedup();
            for f in &fields {
                *report.per_field.entry(f.column()).or_default() += 1;
            }
            for c in &cats {
                *report.per_category.entry(c).or_default() += 1;
            }
            x.categories = cats;
            x.fields = fields.iter().map(|f| f.column()).collect();
            x.entries.sort_unstable();
            report.persons.push(x);
        }
        report
            .persons
            .sort_by(|a, b| (a.first_at, &a.subject).cmp(&(b.first_at, &b.subject)));
        Ok(report)
    }
}
