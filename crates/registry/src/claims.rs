//! Employment claims decided: an employer said a person works for it (an entrant line, or an
//! employer user's link); the person confirms or refuses a link, an agent decides a request
//! (a new person, or a registered one within a case on them) or a link within a case. Until
//! then nothing links the person to the employer (docs/declarations.md, "Entrants").

use crate::Registry;
use domain::{Cin, DenyReason, Immatriculation, PersonField, Role};
use kernel::columns::CIN_INDEX;
use kernel::{AppError, Audit, Clash, Missing, Principal, Subject};
use serde::Serialize;
use store::{ClaimDecision, ClaimKind, ClaimRow, ClaimState, EmploymentRow, PersonRow};

/// Claims an agent reads at a time.
pub const CLAIM_PAGE_MAX: i64 = 50;

/// A pending claim, as the one who may decide it sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimView {
    #[serde(serialize_with = "kernel::id_string::serialize")]
    pub claim_id: i64,
    /// `link` (a registered person named by number, CIN and name) or `request` (to
    /// immatriculate, or to match with a registered person).
    pub kind: &'static str,
    pub affiliate_number: String,
    pub employer_name: String,
    pub start_date: String,
    /// What the employer declared: shown to agents, who decide requests (the person knows
    /// their own CIN and name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared_cin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared_name: Option<String>,
}

/// How a claim was decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimOutcome {
    pub state: &'static str,
    /// How many pending claims the decision settled (the same employer's, for the same person
    /// or declared CIN).
    pub claims: usize,
    /// The number of a person immatriculated from a request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub immatriculation: Option<String>,
}

/// What the decider says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'a> {
    Refuse,
    /// Confirm: a link as it stands; a request as a new person (`None`) or as the registered
    /// person with this number (an agent with a case on them).
    Confirm(Option<&'a str>),
}

/// Queued notices read at a time.
const NOTICES: i64 = 100;
/// Notices one run sends at most (the rest wait for the next minute's run).
const NOTICES_PER_RUN: usize = 500;
/// How long a node that took a notice has to send it before another may (5 minutes).
const NOTICE_LEASE: i64 = 300 * 1_000_000;

impl Registry {
    /// Sends the notices employment claims queued: each person a pending link claim names (an
    /// employer said they work for it, by number, CIN and name) is told by SMS to confirm or
    /// refuse in their account, oldest first, at most [`NOTICES_PER_RUN`]. Each is taken
    /// first (a lease: of several nodes, one sends it) and marked sent after it went, so a
    /// crash sends one twice, never none. When the SMS sender is down or the hourly cap is
    /// reached, the run stops: the rest of the queue waits for the next run (`daman serve`
    /// runs this every minute), the notice it took for its lease ([`NOTICE_LEASE`]). Returns
    /// how many went.
    pub async fn send_claim_notices(&self) -> Result<usize, AppError> {
        let store = self.k.store();
        let (mut sent, mut after) = (0, 0);
        loop {
            let due = store.unnotified_claims(after, NOTICES).await?;
            let Some(&(last, _)) = due.last() else {
                return Ok(sent);
            };
            after = last;
            for (claim, person) in due {
                if sent >= NOTICES_PER_RUN {
                    return Ok(sent);
                }
                if !store
                    .take_claim_notice(claim, self.k.now().0, NOTICE_LEASE)
                    .await?
                {
                    continue;
                }
                match self.k.notify_claim(person, "claim-notices").await {
                    Ok(()) => {
                        store.claim_notified(claim, self.k.now().0).await?;
                        sent += 1;
                    }
                    Err(e @ (AppError::SmsLimit | AppError::Unavailable)) => {
                        tracing::warn!(error = %e, "employment claim notices wait for the SMS sender");
                        return Ok(sent);
                    }
                    Err(e) => tracing::warn!(error = %e, "an employment claim's notice waits"),
                }
            }
        }
    }

    /// The pending claims `who` may decide: an insured person's links (their own), or a page of
    /// every pending claim for an agent (after `after`, at most [`CLAIM_PAGE_MAX`]), with what
    /// was declared. Anyone else is refused.
    pub async fn pending_claims(
        &self,
        who: &Principal,
        after: Option<i64>,
        request_id: &str,
    ) -> Result<Vec<ClaimView>, AppError> {
        let store = self.k.store();
        let (rows, agent) = match (who.role, who.person_id) {
            (Role::Insured, Some(me)) => {
                let rows = store.claims_of_person(me, ClaimState::Pending).await?;
                let rows: Vec<ClaimRow> = rows
                    .into_iter()
                    .filter(|c| c.kind == ClaimKind::Link)
                    .collect();
                Audit::command(who, "read_claims", Some(me))
                    .detail(format!("count={}", rows.len()))
                    .write(&self.k, request_id)
                    .await?;
                (rows, None)
            }
            (Role::Agent, _) => {
                self.registrar(who, "read_claims", request_id).await?;
                let rows = store
                    .pending_claims(after.unwrap_or(0), CLAIM_PAGE_MAX)
                    .await?;
                // What was declared is in the log before it is decrypted.
                let event = Audit::command(who, "read_claims", None)
                    .fields(&[
                        PersonField::Cin,
                        PersonField::LastName,
                        PersonField::FirstName,
                    ])
                    .detail(format!("count={}", rows.len()));
                (rows, Some(self.k.recorded_read(event, request_id).await?))
            }
            _ => {
                Audit::command(who, "read_claims", None)
                    .denied(DenyReason::RoleHasNoAccess)
                    .write(&self.k, request_id)
                    .await?;
                return Err(AppError::Denied(DenyReason::RoleHasNoAccess));
            }
        };
        let mut ids: Vec<i64> = rows.iter().map(|c| c.employer_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let employers = store.employers_where(false, &ids).await?;
        let mut out = Vec::with_capacity(rows.len());
        for c in &rows {
            let e = employers
                .iter()
                .find(|e| e.id == c.employer_id)
                .ok_or(store::StoreError::Corrupt("claim employer"))?;
            let (declared_cin, declared_name) = if let Some(pass) = &agent {
                let (cin, name) = self.k.open_declared(pass, c)?;
                (Some(cin), Some(name))
            } else {
                (None, None)
            };
            out.push(ClaimView {
                claim_id: c.id,
                kind: c.kind.name(),
                affiliate_number: format!("{:07}", e.affiliate_number),
                employer_name: e.name.clone(),
                start_date: c.start_date.clone(),
                declared_cin,
                declared_name,
            });
        }
        Ok(out)
    }

    /// Decides a pending claim, and with it the same employer's other pending claims for the
    /// same person (or declared CIN). The insured person decides the links that name them; an
    /// agent decides a link within an open case on its person, and a request as a new person,
    /// as a registered person within a case on them, or refuses it. Confirming begins the
    /// employment from the earliest claim's start. To an insured person, a claim that is not
    /// theirs is the same `NotFound` as one that does not exist.
    pub async fn decide_claim(
        &self,
        who: &Principal,
        claim_id: i64,
        verdict: Verdict<'_>,
        request_id: &str,
    ) -> Result<ClaimOutcome, AppError> {
        let store = self.k.store();
        let claim = store
            .claim(claim_id)
            .await?
            .filter(|c| c.state == ClaimState::Pending);
        let audit = |person: Option<i64>| Audit::command(who, "decide_claim", person);
        let claim = match (who.role, claim) {
            _ if who.locked => {
                audit(None)
                    .denied(DenyReason::Locked)
                    .write(&self.k, request_id)
                    .await?;
                return Err(AppError::Denied(DenyReason::Locked));
            }
            (Role::Insured, Some(c))
                if c.kind == ClaimKind::Link
                    && c.person_id.is_some()
                    && c.person_id == who.person_id =>
            {
                c
            }
            (Role::Agent, Some(c)) => {
                self.registrar(who, "decide_claim", request_id).await?;
                c
            }
            (Role::Insured | Role::Agent, _) => {
                audit(who.person_id.filter(|_| who.role == Role::Insured))
                    .not_found()
                    .write(&self.k, request_id)
                    .await?;
                return Err(AppError::NotFound(Missing::Claim));
            }
            _ => {
                audit(None)
                    .denied(DenyReason::RoleHasNoAccess)
                    .write(&self.k, request_id)
                    .await?;
                return Err(AppError::Denied(DenyReason::RoleHasNoAccess));
            }
        };
        let siblings = store.sibling_claims(&claim).await?;
        let mut decision = ClaimDecision {
            claims: siblings.iter().map(|c| c.id).collect(),
            decided_by: Some(who.id),
            at: self.k.now().0,
            ..ClaimDecision::default()
        };
        let mut immatriculation = None;
        let person = match verdict {
            Verdict::Refuse => {
                decision.state = Some(ClaimState::Refused);
                claim.person_id
            }
            Verdict::Confirm(as_person) => {
                decision.state = Some(ClaimState::Confirmed);
                let person = match (claim.kind, as_person, who.role) {
                    (ClaimKind::Link, _, _) => claim.person_id,
                    (ClaimKind::Request, Some(number), Role::Agent) => {
                        let n = Immatriculation::parse(number)
                            .map_err(|e| AppError::Invalid(vec![e]))?;
                        let p = self.k.resolve(&Subject::Immatriculation(n)).await?;
                        if p.is_none() {
                            audit(None).not_found().write(&self.k, request_id).await?;
                            return Err(AppError::NotFound(Missing::Person));
                        }
                        decision.person_id = p;
                        p
                    }
                    (ClaimKind::Request, None, Role::Agent) => {
                        let (row, number) = self.person_from_claim(who, &claim, request_id).await?;
                        immatriculation = Some(number);
                        decision.person_id = Some(row.id);
                        let id = row.id;
                        decision.new_person = Some(row);
                        Some(id)
                    }
                    _ => return Err(AppError::Internal("claim verdict")),
                };
                let person = person.ok_or(AppError::Internal("claim person"))?;
                let start = siblings
                    .iter()
                    .map(|c| c.start_date.clone())
                    .min()
                    .unwrap_or_else(|| claim.start_date.clone());
                decision.employment = Some(EmploymentRow {
                    id: store.allocate("employment", 1).await?,
                    employer_id: claim.employer_id,
                    person_id: person,
                    start_date: start,
                    end_date: None,
                    created_at: decision.at,
                });
                Some(person)
            }
        };
        // An agent who links a registered person needs a case on them, and the link counts
        // against the agent's budget like a read of them.
        if who.role == Role::Agent
            && decision.new_person.is_none()
            && let (Some(p), Some(ClaimState::Confirmed)) = (person, decision.state)
        {
            self.k
                .refuse_decoy(
                    who,
                    Some(p),
                    Some(claim.employer_id),
                    "decide_claim",
                    request_id,
                )
                .await?;
            if !self.k.has_open_case(who.id, p).await? {
                audit(Some(p))
                    .denied(DenyReason::NoOpenCase)
                    .write(&self.k, request_id)
                    .await?;
                return Err(AppError::Denied(DenyReason::NoOpenCase));
            }
            self.k.spend_on_person(who, p, request_id).await?;
        }
        let state = decision.state.map_or("pending", ClaimState::name);
        // Audit first: a link that is not recorded must not exist.
        audit(person)
            .detail(format!("claims={} state={state}", decision.claims.len()))
            .write(&self.k, request_id)
            .await?;
        store.decide_claims(&decision).await.map_err(|e| match e {
            store::StoreError::Conflict("claim decided") => AppError::Conflict(Clash::ClaimDecided),
            store::StoreError::Conflict(_) => AppError::Conflict(Clash::Cin),
            e => AppError::Store(e),
        })?;
        Ok(ClaimOutcome {
            state,
            claims: decision.claims.len(),
            immatriculation,
        })
    }

    /// A person immatriculated from a request: a new number, the CIN and the name as declared
    /// (the registry completes the record later). A CIN already registered is a conflict: the
    /// agent confirms the request as that person instead.
    async fn person_from_claim(
        &self,
        who: &Principal,
        c: &ClaimRow,
        request_id: &str,
    ) -> Result<(PersonRow, String), AppError> {
        let event = Audit::command(who, "read_claim", None)
            .fields(&[
                PersonField::Cin,
                PersonField::LastName,
                PersonField::FirstName,
            ])
            .detail(format!("claim={}", c.id));
        let pass = self.k.recorded_read(event, request_id).await?;
        let (cin, name) = self.k.open_declared(&pass, c)?;
        let cin = Cin::parse(&cin)?;
        let store = self.k.store();
        let ring = self.k.keyring();
        let cin_bidx = ring
            .blind_index(CIN_INDEX, cin.as_str().as_bytes())?
            .to_vec();
        if !store
            .person_ids_by_index(store::BlindColumn::Cin, std::slice::from_ref(&cin_bidx))
            .await?
            .is_empty()
        {
            return Err(AppError::Conflict(Clash::Cin));
        }
        let (numbers, slots) = self.numbers(1).await?;
        if !slots.is_empty() {
            let decoys = self.decoy_rows(&slots).await?;
            store.insert_persons(&decoys).await?;
            let ids: Vec<i64> = decoys.iter().map(|r| r.id).collect();
            self.k.record_decoys(&[], &ids)?;
        }
        let number = Immatriculation::from_number(numbers[0])?.to_string();
        let id = self.person_ids(1).await?[0];
        let (last, first_name) = name.split_once(' ').unwrap_or((name.as_str(), ""));
        let row = self.person_row(
            id,
            &number,
            cin.as_str(),
            &[
                (PersonField::LastName, last),
                (PersonField::FirstName, first_name),
                (PersonField::LastNameAr, ""),
                (PersonField::FirstNameAr, ""),
                (PersonField::BirthDate, ""),
                (PersonField::Children, "0"),
            ],
        )?;
        Ok((row, number))
    }
}
