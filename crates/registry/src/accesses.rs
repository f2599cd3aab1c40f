//! "Who read my data": an insured person lists the accesses to their own record, from the
//! audit log (docs/audit.md): when, what, by which role and unit, for which purpose, allowed
//! or refused; the reader's account name only where policy allows it (`access_log_names`).

use crate::Registry;
use domain::{DenyReason, PersonField, Role};
use kernel::{AppError, Audit, Principal};
use serde::Serialize;
use std::collections::HashMap;

/// Accesses per page at most (and by default).
pub const ACCESS_PAGE_MAX: u32 = 100;

/// One event of the audit log that names the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Access {
    /// The audit entry's number (`daman audit prove --entry N` proves it to an outsider).
    pub entry: u64,
    /// When (microseconds since 1970, UTC).
    pub at: i64,
    /// What was done: `read`, `reveal` (a value shown unmasked), `update_contact`, …
    pub action: String,
    /// The role of whoever did it (`insured`, `employer_user`, `agent`, `security_officer`,
    /// or `operator` for the fund's command line).
    pub role: String,
    /// Their unit: for an employer's user, the employer's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The purpose they gave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The fields concerned (API names).
    pub fields: Vec<&'static str>,
    /// `allowed`, `denied`, `not_found`, or what else the event recorded (e.g. `superseded`
    /// for a RIB change replaced by another).
    pub outcome: String,
    /// Done by the person themself.
    pub by_you: bool,
    /// The reader's account name, where policy allows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader: Option<String>,
}

/// A page of accesses, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessPage {
    pub accesses: Vec<Access>,
    /// Pass as `before` for the next (older) page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
}

impl Registry {
    /// The accesses to `who`'s own record numbered below `before` (all when `None`), newest
    /// first, `limit` at most (1 to [`ACCESS_PAGE_MAX`]). Only an insured person, for
    /// themself; the request is audited (and so appears in the list).
    pub async fn my_accesses(
        &self,
        who: &Principal,
        before: Option<u64>,
        limit: Option<u32>,
        request_id: &str,
    ) -> Result<AccessPage, AppError> {
        let (Role::Insured, Some(person)) = (who.role, who.person_id) else {
            Audit::command(who, "read_access_log", None)
                .denied(DenyReason::RoleHasNoAccess)
                .write(&self.k, request_id)
                .await?;
            return Err(AppError::Denied(DenyReason::RoleHasNoAccess));
        };
        Audit::command(who, "read_access_log", Some(person))
            .write(&self.k, request_id)
            .await?;
        let limit = limit.unwrap_or(ACCESS_PAGE_MAX).clamp(1, ACCESS_PAGE_MAX);
        let subject = self.k.keyring().person_pseudonym(person);
        let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let mut rows = self
            .k
            .store()
            .audit_events_of_subject(&subject, before, i64::from(limit) + 1)
            .await?;
        let next_before = (rows.len() > limit as usize).then(|| {
            rows.truncate(limit as usize);
            rows.last().map_or(0, |(seq, _)| *seq as u64)
        });
        // Who each principal is: their label (if shown) and unit, looked up once.
        let mut principals: HashMap<i64, (Option<String>, Option<String>)> = HashMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for (seq, e) in rows {
            let (reader, unit) = match e.principal_id {
                Some(id) if !principals.contains_key(&id) => {
                    let found = self.reader_of(id).await?;
                    principals.entry(id).or_insert(found).clone()
                }
                Some(id) => principals.get(&id).cloned().unwrap_or_default(),
                None => (None, None),
            };
            let by_you = e.principal_id == Some(who.id);
            out.push(Access {
                entry: seq as u64,
                at: e.at,
                action: e.action,
                role: e.role,
                unit,
                purpose: e.purpose,
                fields: PersonField::from_bits(e.fields)
                    .into_iter()
                    .map(PersonField::column)
                    .collect(),
                outcome: match e.outcome.as_str() {
                    "allow" | "ok" => "allowed".into(),
                    o if o.starts_with("deny") => "denied".into(),
                    o => o.to_string(),
                },
                by_you,
                reader: reader.filter(|_| self.k.access_log_names() && !by_you),
            });
        }
        Ok(AccessPage {
            accesses: out,
            next_before,
        })
    }

    /// A principal's account name and unit (an employer user's employer name).
    async fn reader_of(&self, id: i64) -> Result<(Option<String>, Option<String>), AppError> {
        let Some(p) = self.k.store().principal(id).await? else {
            return Ok((None, None));
        };
        let unit = match p.employer_id {
            Some(e) => self
                .k
                .store()
                .employers_where(false, &[e])
                .await?
                .into_iter()
                .next()
                .map(|e| e.name),
            None => None,
        };
        Ok((Some(p.label), unit))
    }
}
