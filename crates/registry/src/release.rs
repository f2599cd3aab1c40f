//! The four-eyes release of contact data for breach notifications (docs/audit.md): one security
//! officer asks for the phone, e-mail and address of the persons a breach report lists, a
//! second one approves, and the first receives them once. Every step is audited, and so is
//! each person's contact data as it is decrypted (purpose `breach_notification`, so the persons
//! see it in "who read my data").

use crate::Registry;
use crate::breach::principal_set;
use domain::{DenyReason, PersonField, Purpose, Role, Timestamp};
use kernel::hex;
use kernel::{AppError, Audit, Clash, Missing, Principal};
use serde::Serialize;
use std::collections::HashMap;
use store::ContactReleaseRow;

/// How long an approval stays good for the release.
pub const RELEASE_APPROVAL_HOURS: i64 = 24;

/// The contact fields a notification needs.
const CONTACT: [PersonField; 3] = [PersonField::Phone, PersonField::Email, PersonField::Address];

/// Person ids hashed per query when mapping pseudonyms back to persons.
const SCAN: i64 = 50_000;

/// A person to notify: their pseudonym (as in the breach report) and contact data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub subject: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
}

/// What a release hands out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactRelease {
    #[serde(serialize_with = "kernel::id_string::serialize")]
    pub release: i64,
    pub contacts: Vec<Contact>,
}

fn is_officer(who: &Principal) -> bool {
    who.role == Role::SecurityOfficer && !who.locked
}

impl Registry {
    /// `audit`, if `who` is a security officer; otherwise the refusal is audited.
    async fn officer_only(
        &self,
        who: &Principal,
        audit: Audit,
        request_id: &str,
    ) -> Result<Audit, AppError> {
        if is_officer(who) {
            return Ok(audit);
        }
        audit
            .denied(DenyReason::RoleHasNoAccess)
            .write(&self.k, request_id)
            .await?;
        Err(AppError::Denied(DenyReason::RoleHasNoAccess))
    }

    /// A security officer asks for the contact data of the persons revealed to `principals`
    /// between `from` and `to` (the breach report's question). Returns the request's id, for a
    /// second officer to approve.
    pub async fn request_contact_release(
        &self,
        who: &Principal,
        principals: &[i64],
        from: Timestamp,
        to: Timestamp,
        request_id: &str,
    ) -> Result<i64, AppError> {
        let (_, list) = principal_set(principals);
        let audit = self
            .officer_only(
                who,
                Audit::command(who, "contact_release_request", None),
                request_id,
            )
            .await?;
        // A window that is over: the persons it exposed cannot change after the approval
        // (events are appended at the present time).
        if from.0 >= to.0 || to.0 > self.k.now().0 {
            return Err(domain::ValidationError::new("to", domain::Rule::PastWindow).into());
        }
        let id = self.k.new_id()?;
        self.k
            .store()
            .insert_contact_release(&ContactReleaseRow {
                id,
                requested_by: who.id,
                principals: list.clone(),
                from_at: from.0,
                to_at: to.0,
                requested_at: self.k.now().0,
                approved_by: None,
                approved_at: None,
                released_at: None,
            })
            .await?;
        audit
            .detail(format!(
                "release={id} principals={list} from={} to={}",
                from.0, to.0
            ))
            .write(&self.k, request_id)
            .await?;
        Ok(id)
    }

    /// A second security officer approves a request (never the one who made it), repeating
    /// its question (principals and window): they approve what they have seen, and the
    /// request must be exactly that.
    pub async fn approve_contact_release(
        &self,
        who: &Principal,
        release: i64,
        principals: &[i64],
        from: Timestamp,
        to: Timestamp,
        request_id: &str,
    ) -> Result<(), AppError> {
        let audit = Audit::command(who, "contact_release_approve", None)
            .detail(format!("release={release}"));
        let audit = self.officer_only(who, audit, request_id).await?;
        let r = self
            .k
            .store()
            .contact_release(release)
            .await?
            .ok_or(AppError::NotFound(Missing::Release))?;
        if r.requested_by == who.id {
            audit
                .denied(DenyReason::FourEyes)
                .write(&self.k, request_id)
                .await?;
            return Err(AppError::Denied(DenyReason::FourEyes));
        }
        let (_, list) = principal_set(principals);
        if (list.as_str(), from.0, to.0) != (r.principals.as_str(), r.from_at, r.to_at) {
            return Err(AppError::Conflict(Clash::ReleaseDiffers));
        }
        if !self
            .k
            .store()
            .approve_contact_release(release, who.id, self.k.now().0)
            .await?
        {
            return Err(AppError::Conflict(Clash::ReleaseAlreadyApproved));
        }
        audit.write(&self.k, request_id).await
    }

    /// The requester receives the contact data of an approved request, once, within
    /// [`RELEASE_APPROVAL_HOURS`] of the approval: each person's read is audited before it is
    /// decrypted.
    pub async fn release_contacts(
        &self,
        who: &Principal,
        release: i64,
        request_id: &str,
    ) -> Result<ContactRelease, AppError> {
        let audit =
            Audit::command(who, "contact_release", None).detail(format!("release={release}"));
        let r = match self.k.store().contact_release(release).await? {
            Some(r) if is_officer(who) && r.requested_by == who.id => r,
            Some(_) => {
                audit
                    .denied(DenyReason::RoleHasNoAccess)
                    .write(&self.k, request_id)
                    .await?;
                return Err(AppError::Denied(DenyReason::RoleHasNoAccess));
            }
            None => return Err(AppError::NotFound(Missing::Release)),
        };
        let Some(approved_at) = r.approved_at else {
            return Err(AppError::Conflict(Clash::ReleaseNotApproved));
        };
        let now = self.k.now();
        if now.0 - approved_at > RELEASE_APPROVAL_HOURS * 3_600 * 1_000_000 {
            return Err(AppError::Conflict(Clash::ReleaseExpired));
        }
        // The persons first (a failure here leaves the approval unused), then the release is
        // used up, then each read is audited and decrypted.
        let principals: Vec<i64> = r
            .principals
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        let report = self
            .exposure(principals, Timestamp(r.from_at), Timestamp(r.to_at))
            .await?;
        let persons = self
            .persons_of_pseudonyms(report.persons.iter().map(|p| p.subject.clone()).collect())
            .await?;
        if !self
            .k
            .store()
            .mark_contact_release_used(release, now.0)
            .await?
        {
            return Err(AppError::Conflict(Clash::ReleaseAlreadyUsed));
        }
        let pass = self.k.recorded_read(audit, request_id).await?;
        // Every read is recorded before anything is decrypted.
        for (_, person) in &persons {
            Audit::command(who, "reveal", Some(*person))
                .fields(&CONTACT)
                .purpose(Purpose::BreachNotification)
                .detail(format!("release={release}"))
                .write(&self.k, request_id)
                .await?;
        }
        let ids: Vec<i64> = persons.iter().map(|(_, p)| *p).collect();
        let ciphers: HashMap<i64, store::PersonCipher> = self
            .k
            .store()
            .persons_by_id(&ids)
            .await?
            .into_iter()
            .collect();
        let mut contacts = Vec::with_capacity(persons.len());
        for (subject, person) in persons {
            let Some(cipher) = ciphers.get(&person) else {
                continue;
            };
            contacts.push(Contact {
                subject,
                phone: self
                    .k
                    .system_text(&pass, person, cipher, PersonField::Phone)?,
                email: self
                    .k
                    .system_text(&pass, person, cipher, PersonField::Email)?,
                address: self
                    .k
                    .system_text(&pass, person, cipher, PersonField::Address)?,
            });
        }
        Ok(ContactRelease { release, contacts })
    }

    /// The persons named by these pseudonyms (hex), in their order: the fund's pseudonym key
    /// maps each registry id to its pseudonym, so the registry's ids are scanned once.
    async fn persons_of_pseudonyms(
        &self,
        subjects: Vec<String>,
    ) -> Result<Vec<(String, i64)>, AppError> {
        let mut wanted: HashMap<String, Option<i64>> =
            subjects.iter().map(|s| (s.clone(), None)).collect();
        let mut left = wanted.len();
        let mut after = 0i64;
        while left > 0 {
            let ids = self.k.store().person_ids_after(after, SCAN).await?;
            let Some(last) = ids.last() else { break };
            after = *last;
            let ring = self.k.keyring();
            for id in ids {
                if let Some(slot) = wanted.get_mut(&hex(&ring.person_pseudonym(id)))
                    && slot.is_none()
                {
                    *slot = Some(id);
                    left -= 1;
                }
            }
        }
        Ok(subjects
            .into_iter()
            .filter_map(|s| wanted.get(&s).copied().flatten().map(|id| (s, id)))
            .collect())
    }
}
