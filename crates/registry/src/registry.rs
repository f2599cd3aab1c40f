//! Registry commands: affiliate an employer, immatriculate a person, link an employment, update
//! contact data, open a case. Inputs arrive as text and are validated here, all at once.

use crate::Registry;
use crate::input::{
    Checks, ContactChange, EmployerCreated, NewEmployer, NewPerson, PersonCreated, email,
    validate_employer, validate_person,
};
use domain::{
    AffiliateNumber, Cin, Date, DenyReason, Immatriculation, PersonField, Phone, Purpose, Role,
    Rule, ValidationError,
};
use kernel::columns::{CASE_REASON, CIN_INDEX, IMMATRICULATION_INDEX, person_column};
use kernel::sms::phone_changed_notice;
use kernel::{AppError, Audit, Clash, Missing, Principal, Registrar, StepUp, Subject};
use store::{
    CaseRow, ClaimKind, ClaimRow, ClaimState, EmployerRow, EmploymentRow, PersonCipher, PersonRow,
};

/// What a link did: an agent's is made; an employer user's waits for the person or an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linked {
    Linked,
    Claimed,
}

fn conflict(what: Clash) -> impl FnOnce(store::StoreError) -> AppError {
    move |e| match e {
        store::StoreError::Conflict(_) => AppError::Conflict(what),
        e => AppError::Store(e),
    }
}

/// The least time an employer user's claim takes to answer, whoever it names: well above
/// the work of the slowest case (a registered person found by number and CIN, their names
/// read and compared: about 3 ms at the median, `scripts/bench-oracle`).
const CLAIM_ANSWER_FLOOR: std::time::Duration = std::time::Duration::from_millis(15);

impl Registry {
    /// Affiliates employers, allocating their affiliation numbers. All or nothing.
    pub async fn affiliate_employers(
        &self,
        reg: Registrar,
        employers: &[NewEmployer],
        request_id: &str,
    ) -> Result<Vec<EmployerCreated>, AppError> {
        let valid = employers
            .iter()
            .map(validate_employer)
            .collect::<Result<Vec<_>, _>>()?;
        let first = self
            .k
            .store()
            .allocate("affiliate_number", valid.len() as i64)
            .await?;
        // Ids counted in affiliation order: an employer's rows in other tables are neighbours
        // of the employers affiliated with it (migration 0014).
        let first_id = self
            .k
            .store()
            .allocate("employer", valid.len() as i64)
            .await?;
        let now = self.k.now().0;
        let mut rows = Vec::with_capacity(valid.len());
        for (i, (name, activity, city, ice)) in valid.into_iter().enumerate() {
            let number =
                AffiliateNumber::from_number(u32::try_from(first + i as i64).unwrap_or(u32::MAX))?;
            rows.push(EmployerRow {
                id: first_id + i as i64,
                affiliate_number: i64::from(number.value()),
                ice: ice.as_str().to_string(),
                name,
                activity,
                city,
                created_at: now,
            });
        }
        // Audit first: a change that is not recorded must not happen.
        Audit::counted(reg.actor(), "affiliate_employer", rows.len())
            .write(&self.k, request_id)
            .await?;
        self.k
            .store()
            .insert_employers(&rows)
            .await
            .map_err(conflict(Clash::Ice))?;
        Ok(rows
            .iter()
            .map(|r| EmployerCreated {
                employer_id: r.id,
                affiliate_number: format!("{:07}", r.affiliate_number),
            })
            .collect())
    }

    /// Immatriculates persons: validates every field, refuses a CIN already registered, allocates
    /// the 9-digit numbers, encrypts every personal field and indexes CIN and number. All or nothing.
    pub async fn immatriculate(
        &self,
        reg: Registrar,
        persons: &[NewPerson],
        request_id: &str,
    ) -> Result<Vec<PersonCreated>, AppError> {
        let valid = persons
            .iter()
            .map(validate_person)
            .collect::<Result<Vec<_>, _>>()?;
        let (numbers, slots) = self.numbers(valid.len()).await?;
        let ids = self.person_ids(valid.len()).await?;
        let mut rows = Vec::with_capacity(valid.len());
        let mut created = Vec::with_capacity(valid.len());
        for (i, p) in valid.into_iter().enumerate() {
            let number_text = Immatriculation::from_number(numbers[i])?.to_string();
            let id = ids[i];
            let fields: Vec<(PersonField, &str)> = p
                .fields
                .iter()
                .filter(|(f, _)| *f != PersonField::Cin)
                .map(|(f, v)| (*f, v.as_str()))
                .collect();
            rows.push(self.person_row(id, &number_text, p.cin.as_str(), &fields)?);
            created.push(PersonCreated {
                person_id: id,
                immatriculation: number_text,
            });
        }
        Audit::counted(reg.actor(), "immatriculate", rows.len())
            .write(&self.k, request_id)
            .await?;
        let decoys = self.decoy_rows(&slots).await?;
        let decoy_ids: Vec<i64> = decoys.iter().map(|r| r.id).collect();
        rows.extend(decoys);
        // In the order of the table: keyed ids put a batch all over it.
        rows.sort_unstable_by_key(|r| r.id);
        self.k
            .store()
            .insert_persons(&rows)
            .await
            .map_err(conflict(Clash::Cin))?;
        self.k.record_decoys(&[], &decoy_ids)?;
        Ok(created)
    }

    /// `n` new person row ids: serials from the counter, each keyed
    /// ([`vault::Keyring::person_id`]), so a row id says nothing of the number given with it.
    /// A database not renumbered yet (migration 0025) keeps the serials, as it numbered
    /// everyone before.
    pub(crate) async fn person_ids(&self, n: usize) -> Result<Vec<i64>, AppError> {
        let first = self.k.store().allocate("person", n as i64).await?;
        if self.k.person_ids_serial().await? {
            return Ok((first..first + n as i64).collect());
        }
        let ring = self.k.keyring();
        (0..n as i64).map(|k| ring.person_id(first + k)).collect()
    }

    /// A person's row: the number, the CIN and every field given sealed (each bound to the
    /// row), the number and the CIN indexed.
    pub(crate) fn person_row(
        &self,
        id: i64,
        number: &str,
        cin: &str,
        fields: &[(PersonField, &str)],
    ) -> Result<PersonRow, AppError> {
        let ring = self.k.keyring();
        let mut cipher = PersonCipher::default();
        let given = [
            (PersonField::Immatriculation, number),
            (PersonField::Cin, cin),
        ];
        for (f, v) in given.iter().chain(fields) {
            cipher.set(*f, ring.encrypt(person_column(*f), id, v.as_bytes())?);
        }
        Ok(PersonRow {
            id,
            immatriculation_bidx: ring
                .blind_index(IMMATRICULATION_INDEX, number.as_bytes())?
                .to_vec(),
            cin_bidx: ring.blind_index(CIN_INDEX, cin.as_bytes())?.to_vec(),
            cipher,
            // The day only: with the audit log's counts, an exact time would place the person
            // among the numbers handed out ([`Registry::person_ids`]).
            created_at: self.k.now().day_start().0,
        })
    }

    /// Links a person (by immatriculation) to an employer (by affiliation number) from a date.
    /// An agent links within an open case on the person, and the link counts against the
    /// agent's read budget like a read of them. An employer user only claims: for its own
    /// employer, giving the person's number, CIN and name. The claim is a link for the person
    /// to confirm when the three are one registered person's (the person hears of it), or else
    /// a request for an agent; the answer is the same either way, so it tells nothing about
    /// who is registered ([`Registry::decide_claim`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn link_employment(
        &self,
        who: &Principal,
        affiliate_number: &str,
        immatriculation: &str,
        cin: Option<&str>,
        name: Option<&str>,
        start_date: &str,
        request_id: &str,
    ) -> Result<Linked, AppError> {
        let started = tokio::time::Instant::now();
        let mut c = Checks::default();
        let affiliate = c.take(AffiliateNumber::parse(affiliate_number));
        let immat = c.take(Immatriculation::parse(immatriculation));
        let start = c.take(Date::parse("start_date", start_date));
        let employer_user = who.role == Role::EmployerUser;
        let cin = match cin {
            Some(s) => c.take(Cin::parse(s)),
            None if employer_user => {
                c.0.push(ValidationError::new(Cin::FIELD, Rule::Required));
                None
            }
            None => None,
        };
        let name = match name {
            Some(s) => c.text("name", s, 60),
            None if employer_user => {
                c.0.push(ValidationError::new("name", Rule::Required));
                None
            }
            None => None,
        };
        c.finish()?;
        let (Some(affiliate), Some(immat), Some(start)) = (affiliate, immat, start) else {
            return Err(AppError::Invalid(vec![]));
        };
        let employer = self
            .k
            .store()
            .employer_by_affiliate(i64::from(affiliate.value()))
            .await?;
        let person = self.k.resolve(&Subject::Immatriculation(immat)).await?;
        self.k
            .refuse_decoy(
                who,
                person,
                employer.as_ref().map(|e| e.id),
                "link_employment",
                request_id,
            )
            .await?;
        if employer_user {
            let (Some(cin), Some(name)) = (cin, name) else {
                return Err(AppError::Invalid(vec![]));
            };
            let claimed = self
                .claim_employment(who, employer, person, &cin, &name, start, request_id)
                .await;
            // No sooner than the floor: a number or CIN found costs a row read and its
            // decryption, one not found costs nothing, and the answer must not say which.
            tokio::time::sleep_until(started + CLAIM_ANSWER_FLOOR).await;
            return claimed;
        }
        let allowed = match (who.role, who.locked) {
            (_, true) => Err(DenyReason::Locked),
            (Role::Agent, _) => match person {
                Some(p) if !self.k.has_open_case(who.id, p).await? => Err(DenyReason::NoOpenCase),
                _ => Ok(()),
            },
            _ => Err(DenyReason::RoleHasNoAccess),
        };
        let audit = Audit::command(who, "link_employment", person);
        if let Err(reason) = allowed {
            audit.denied(reason).write(&self.k, request_id).await?;
            return Err(AppError::Denied(reason));
        }
        let (Some(employer), Some(person_id)) = (employer, person) else {
            audit.not_found().write(&self.k, request_id).await?;
            return Err(AppError::NotFound(if person.is_some() {
                Missing::Employer
            } else {
                Missing::Person
            }));
        };
        self.k.spend_on_person(who, person_id, request_id).await?;
        let row = EmploymentRow {
            id: self.k.store().allocate("employment", 1).await?,
            employer_id: employer.id,
            person_id,
            start_date: start.to_string(),
            end_date: None,
            created_at: self.k.now().0,
        };
        // Audit first: a link that is not recorded must not exist.
        audit.write(&self.k, request_id).await?;
        self.k
            .store()
            .insert_employments(&[row])
            .await
            .map_err(conflict(Clash::Employment))?;
        Ok(Linked::Linked)
    }

    /// An employer user's claim that a person works for its employer: a link when number,
    /// CIN and name are one registered person's, a request otherwise, answered alike. Another
    /// employer (or none) is refused, as that says nothing about persons.
    #[allow(clippy::too_many_arguments)]
    async fn claim_employment(
        &self,
        who: &Principal,
        employer: Option<EmployerRow>,
        by_number: Option<i64>,
        cin: &Cin,
        name: &str,
        start: Date,
        request_id: &str,
    ) -> Result<Linked, AppError> {
        let employer = match employer {
            Some(e) if !who.locked && who.employer_id == Some(e.id) => e,
            _ => {
                let reason = if who.locked {
                    DenyReason::Locked
                } else {
                    DenyReason::NotEmployer
                };
                Audit::command(who, "claim_employment", None)
                    .denied(reason)
                    .write(&self.k, request_id)
                    .await?;
                return Err(AppError::Denied(reason));
            }
        };
        // Number and CIN one person's (by their blind indexes, as an entrant line's), and the
        // name the registry's: compared here, never returned.
        let by_cin = self.k.resolve(&Subject::Cin(cin.clone())).await?;
        let candidate = by_number.filter(|p| by_cin == Some(*p));
        let reason = "an employer user's link by number and CIN: the declared name compared";
        // Audited whether there is a name to compare or not: the answer takes the same time.
        let names = self
            .k
            .registry_names(candidate.as_slice(), reason, request_id)
            .await?;
        let matched = candidate.filter(|p| {
            names
                .get(p)
                .is_some_and(|n| ebds::same_name(&ebds::fit(n, 60), name))
        });
        let ring = self.k.keyring();
        let id = self.k.store().allocate("employment_claim", 1).await?;
        let period = domain::Period::clamped(start.year, start.month);
        let row = ClaimRow {
            id,
            employer_id: employer.id,
            kind: if matched.is_some() {
                ClaimKind::Link
            } else {
                ClaimKind::Request
            },
            state: ClaimState::Pending,
            period: period.number(),
            start_date: start.to_string(),
            declaration_id: None,
            person_id: matched,
            cin_bidx: ring
                .blind_index(CIN_INDEX, cin.as_str().as_bytes())?
                .to_vec(),
            declared: self
                .k
                .seal_declared(id, cin.as_str(), &ebds::fit(name, 60))?,
            created_at: self.k.now().0,
            decided_at: None,
            decided_by: None,
        };
        Audit::command(who, "claim_employment", None)
            .write(&self.k, request_id)
            .await?;
        // The person named is told from the queue ([`Registry::send_claim_notices`]): the
        // answer is the same, in the same time, whoever the claim named.
        self.k.store().insert_claims(&[row]).await?;
        Ok(Linked::Claimed)
    }

    /// Bulk employment links for loaders (ids already known).
    pub async fn link_employments(
        &self,
        reg: Registrar,
        links: &[(i64, i64, String)],
        request_id: &str,
    ) -> Result<(), AppError> {
        let now = self.k.now().0;
        let first_id = self
            .k
            .store()
            .allocate("employment", links.len() as i64)
            .await?;
        let mut rows = Vec::with_capacity(links.len());
        for (k, (employer_id, person_id, start)) in links.iter().enumerate() {
            rows.push(EmploymentRow {
                id: first_id + k as i64,
                employer_id: *employer_id,
                person_id: *person_id,
                start_date: start.clone(),
                end_date: None,
                created_at: now,
            });
        }
        Audit::counted(reg.actor(), "link_employment", rows.len())
            .write(&self.k, request_id)
            .await?;
        self.k
            .store()
            .insert_employments(&rows)
            .await
            .map_err(conflict(Clash::Employment))
    }

    /// Updates a person's phone, e-mail and/or address. The person themselves, or an agent with an
    /// open case on them.
    pub async fn update_contact(
        &self,
        who: &Principal,
        subject: &Subject,
        change: &ContactChange<'_>,
        step_up: Option<StepUp>,
        request_id: &str,
    ) -> Result<(), AppError> {
        let (phone, email_addr, address) = (change.phone, change.email, change.address);
        let mut c = Checks::default();
        let phone = phone.and_then(|s| c.take(Phone::parse(s)));
        let email_addr = email_addr.and_then(|s| c.take(email(s)));
        let address = address.and_then(|s| c.text("address", s, 120));
        if phone.is_none() && email_addr.is_none() && address.is_none() && c.0.is_empty() {
            c.0.push(ValidationError::new("contact", Rule::Required));
        }
        c.finish()?;
        let person = self.k.resolve(subject).await?;
        self.k
            .refuse_decoy(who, person, None, "update_contact", request_id)
            .await?;
        let facts = self.k.facts(who, person, Purpose::SelfService).await?;
        let fields: Vec<PersonField> = [
            phone.as_ref().map(|_| PersonField::Phone),
            email_addr.as_ref().map(|_| PersonField::Email),
            address.as_ref().map(|_| PersonField::Address),
        ]
        .into_iter()
        .flatten()
        .collect();
        let audit = Audit::command(who, "update_contact", person).fields(&fields);
        let allowed = match (who.role, person) {
            _ if facts.locked => Err(DenyReason::Locked),
            (_, None) => Err(DenyReason::NotSelf),
            (Role::Insured, Some(id)) if facts.is_self => Ok(id),
            (Role::Insured, Some(_)) => Err(DenyReason::NotSelf),
            (Role::Agent, Some(id)) if self.k.has_open_case(who.id, id).await? => Ok(id),
            (Role::Agent, Some(_)) => Err(DenyReason::NoOpenCase),
            _ => Err(DenyReason::RoleHasNoAccess),
        };
        let id = match allowed {
            Ok(id) => id,
            Err(reason) => {
                audit.denied(reason).write(&self.k, request_id).await?;
                return Err(AppError::Denied(reason));
            }
        };
        // The phone on record receives the RIB-change notices: changing it is a sensitive act.
        if phone.is_some() && step_up.is_none() {
            audit
                .outcome("deny:step_up_required")
                .write(&self.k, request_id)
                .await?;
            return Err(AppError::StepUpRequired);
        }
        let ring = &self.k.keyring();
        let enc = |f: PersonField, v: Option<String>| -> Result<Option<Vec<u8>>, AppError> {
            v.map(|v| ring.encrypt(person_column(f), id, v.as_bytes()))
                .transpose()
        };
        let phone = enc(PersonField::Phone, phone.map(|p| p.as_str().to_string()))?;
        let email_addr = enc(PersonField::Email, email_addr)?;
        let address = enc(PersonField::Address, address)?;
        // Audit first: a change that is not recorded must not happen (and the phone it
        // replaces is read after the event).
        let pass = self.k.recorded_read(audit, request_id).await?;
        // The number being replaced hears about it (a SIM swap or an insider would otherwise
        // go unnoticed), and RIB changes wait a while after it.
        let old_phone = match phone {
            Some(_) => self.k.phone_on_record(&pass, id).await?,
            None => None,
        };
        let changed_phone = phone.is_some();
        if !self
            .k
            .store()
            .update_contact(id, phone, email_addr, address, self.k.now().0)
            .await?
        {
            return Err(AppError::NotFound(Missing::Person));
        }
        if changed_phone {
            self.k
                .store()
                .record_phone_change(id, self.k.now().0)
                .await?;
            if let Some(old) = old_phone
                && let Err(e) = self
                    .k
                    .send_notice(&old, phone_changed_notice(domain::Lang::Fr))
                    .await
            {
                tracing::warn!(error = %e, "phone change notice not sent");
            }
        }
        Ok(())
    }

    /// An agent opens a case on a person (by immatriculation), which lets them read that person's
    /// full record for case review during [`CASE_DAYS`] days. The reason is stored encrypted.
    /// Returns the case id.
    pub async fn open_case(
        &self,
        who: &Principal,
        immatriculation: &str,
        reason: &str,
        request_id: &str,
    ) -> Result<i64, AppError> {
        let mut c = Checks::default();
        let immat = c.take(Immatriculation::parse(immatriculation));
        let reason = c.text("reason", reason, 200);
        c.finish()?;
        let (Some(immat), Some(reason)) = (immat, reason) else {
            return Err(AppError::Invalid(vec![]));
        };
        self.registrar(who, "open_case", request_id).await?;
        let person = self.k.resolve(&Subject::Immatriculation(immat)).await?;
        self.k
            .refuse_decoy(who, person, None, "open_case", request_id)
            .await?;
        let audit = Audit::command(who, "open_case", person);
        let Some(person) = person else {
            audit.not_found().write(&self.k, request_id).await?;
            return Err(AppError::NotFound(Missing::Person));
        };
        // A case opens the person's record: it counts against the agent's budget like a read.
        self.k.spend_on_person(who, person, request_id).await?;
        let id = self.k.new_id()?;
        let reason = self
            .k
            .keyring()
            .encrypt(CASE_REASON, id, reason.as_bytes())?;
        let row = CaseRow {
            id,
            agent_id: who.id,
            person_id: person,
            reason,
            opened_at: self.k.now().0,
        };
        // Audit first: access that is not recorded must not be granted.
        audit.write(&self.k, request_id).await?;
        self.k.store().open_case(&row).await?;
        Ok(row.id)
    }

    /// The registrar capability of `who`; a refusal is audited like any other.
    pub async fn registrar(
        &self,
        who: &Principal,
        action: &'static str,
        request_id: &str,
    ) -> Result<Registrar, AppError> {
        match self.k.registrar(who) {
            Ok(r) => Ok(r),
            Err(AppError::Denied(reason)) => {
                Audit::command(who, action, None)
                    .denied(reason)
                    .write(&self.k, request_id)
                    .await?;
                Err(AppError::Denied(reason))
            }
            Err(e) => Err(e),
        }
    }
}
