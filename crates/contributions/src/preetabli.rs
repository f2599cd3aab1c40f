//! Préétablis: issued from the registry (each employer's current employees), read back as
//! AFFEBDS files.

use domain::{Centimes, Date, Period, PersonField};
use ebds::{Employee, Identity, Layout, Preetabli};
use foldhash::{HashMap, HashMapExt, HashSet};
use std::collections::BTreeMap;
use store::{EmployerRow, PersonCipher, PreetabliLineRow, PreetabliRow};

use crate::Contributions;
use crate::codec::{
    corrupt, employees_payload, header_payload, num, parse_employee, parse_employees, parse_header,
    split, transfer_id,
};
use kernel::columns::{PREETABLI_EMPLOYEES, PREETABLI_HEADER, PREETABLI_LINE};
use kernel::gate::Pass;
use kernel::{AppError, Audit, Declarant, Missing, Registrar};

/// The person fields a préétabli shows (A02).
pub(crate) const PREETABLI_FIELDS: [PersonField; 4] = [
    PersonField::Immatriculation,
    PersonField::LastName,
    PersonField::FirstName,
    PersonField::Children,
];

impl Contributions {
    /// Issues the préétabli of `period` to each employer (every employer when `employers` is
    /// empty) that has none yet: its known employees are the persons employed on the first day
    /// of the period, with their children and the family allowances of the dated table.
    /// Returns how many were issued.
    pub async fn issue_preetablis(
        &self,
        reg: Registrar,
        period: Period,
        employers: &[i64],
        request_id: &str,
    ) -> Result<usize, AppError> {
        let ids = if employers.is_empty() {
            self.k.store().employer_ids().await?
        } else {
            employers.to_vec()
        };
        let pn = period.number();
        let af = self
            .k
            .params()
            .family_allowance_at(period)
            .cloned()
            .ok_or(AppError::Invalid(vec![domain::ValidationError::new(
                Period::FIELD,
                domain::Rule::NoParameters,
            )]))?;
        let mut issued = 0;
        for chunk in ids.chunks(1_000) {
            let existing: HashSet<i64> = self
                .k
                .store()
                .preetablis(chunk, pn)
                .await?
                .into_iter()
                .map(|p| p.employer_id)
                .collect();
            let todo: Vec<i64> = chunk
                .iter()
                .copied()
                .filter(|e| !existing.contains(e))
                .collect();
            if todo.is_empty() {
                continue;
            }
            // In the order of affiliation numbers: the préétablis of employers whose files sort
            // together are neighbours, which an import reads in one range.
            let mut employers = self.k.store().employers_where(false, &todo).await?;
            employers.sort_by_key(|e| e.affiliate_number);
            let staff = self
                .k
                .store()
                .employees_on(&todo, &period.first_day().to_string())
                .await?;
            let person_ids: Vec<i64> = staff.iter().map(|(_, p)| *p).collect();
            let ciphers: HashMap<i64, PersonCipher> = self
                .k
                .store()
                .persons_by_id(&person_ids)
                .await?
                .into_iter()
                .collect();
            // The names, numbers and children about to be read are in the audit log first.
            let event = Audit::counted(reg.actor(), "issue_preetablis", employers.len())
                .fields(&PREETABLI_FIELDS)
                .detail(format!("period={period} employees={}", staff.len()));
            let pass = self.k.recorded_read(event, request_id).await?;
            let first_pre = self
                .k
                .store()
                .allocate("preetabli", employers.len() as i64)
                .await?;
            let mut by_employer: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
            for (e, p) in &staff {
                by_employer.entry(*e).or_default().push(*p);
            }
            let now = self.k.now();
            let mut rows = Vec::with_capacity(employers.len());
            for (k, e) in employers.iter().enumerate() {
                let id = first_pre + k as i64;
                let mut employees = Vec::new();
                for pid in by_employer.get(&e.id).map(Vec::as_slice).unwrap_or(&[]) {
                    let c = ciphers
                        .get(pid)
                        .ok_or(store::StoreError::Corrupt("person"))?;
                    let text = |f: PersonField| -> Result<String, AppError> {
                        self.k
                            .system_text(&pass, *pid, c, f)?
                            .ok_or_else(|| store::StoreError::Corrupt("person field").into())
                    };
                    let children: u8 = text(PersonField::Children)?.parse().unwrap_or(0);
                    let amount = af.for_children(children);
                    let name = format!(
                        "{} {}",
                        text(PersonField::LastName)?,
                        text(PersonField::FirstName)?
                    );
                    employees.push((
                        *pid,
                        Employee {
                            immatriculation: num(&text(PersonField::Immatriculation)?)?,
                            name: ebds::fit(&name, 60),
                            children,
                            af_payable: amount,
                            af_deductible: Centimes(0),
                            af_net: amount,
                        },
                    ));
                }
                employees.sort_by_key(|(_, e)| e.immatriculation);
                let identity = self.identity_of(e, period, now.date())?;
                let transfer = transfer_id(period, id);
                rows.push(PreetabliRow {
                    id,
                    employer_id: e.id,
                    period: pn,
                    transfer_id: transfer as i64,
                    first_line: 0,
                    lines: employees.len() as i64,
                    header: self.k.keyring().encrypt(
                        PREETABLI_HEADER,
                        id,
                        &header_payload(transfer, 0, &identity, Layout::default()),
                    )?,
                    issued_at: now.0,
                    employees: Some(self.k.keyring().encrypt(
                        PREETABLI_EMPLOYEES,
                        id,
                        &employees_payload(&employees)?,
                    )?),
                    persons: Some(store::persons_bytes(
                        &employees.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
                    )),
                });
            }
            self.k.store().insert_preetablis(&rows).await?;
            issued += rows.len();
        }
        Ok(issued)
    }

    pub(crate) fn identity_of(
        &self,
        e: &EmployerRow,
        period: Period,
        today: Date,
    ) -> Result<Identity, AppError> {
        Ok(Identity {
            affiliate: u32::try_from(e.affiliate_number).map_err(|_| corrupt())?,
            period,
            name: ebds::fit(&e.name, 40),
            activity: ebds::fit(&e.activity, 40),
            address: String::new(),
            city: ebds::fit(&e.city, 20),
            postcode: String::new(),
            agency: String::new(),
            issued: today,
            due: period.due_date(),
        })
    }

    /// The préétabli file (`AFFEBDS`) of an employer for a period, as issued.
    pub async fn preetabli_file(
        &self,
        who: Declarant,
        affiliate_number: u32,
        period: Period,
        request_id: &str,
    ) -> Result<Vec<u8>, AppError> {
        let employer = self
            .k
            .employer_for(who, affiliate_number, true, request_id)
            .await?;
        let pre = self
            .k
            .store()
            .preetablis(&[employer.id], period.number())
            .await?
            .pop()
            .ok_or(AppError::NotFound(Missing::Preetabli))?;
        // Each person whose name, number and children are about to be read is in the audit
        // log first (a préétabli issued before migration 0024: the employees it was drawn from).
        let persons = match &pre.persons {
            Some(b) => store::persons_of_bytes(b)?,
            None => self
                .k
                .store()
                .employees_on(&[employer.id], &period.first_day().to_string())
                .await?
                .into_iter()
                .map(|(_, p)| p)
                .collect(),
        };
        let detail = format!("affiliate={affiliate_number:07} period={period}");
        let pass = self
            .admit_persons(
                who,
                &persons,
                "download_preetabli",
                &PREETABLI_FIELDS,
                &detail,
                request_id,
            )
            .await?;
        let mut employees = self.employees_of(&pass, std::slice::from_ref(&pre)).await?;
        self.preetabli_of(&pass, &pre, employees.remove(&pre.id).unwrap_or_default())
    }

    /// Every préétabli of a period (operator), in affiliation order, `chunk` employers at a
    /// time: `each` receives the affiliation number and the file. One audit event for the run.
    pub async fn each_preetabli(
        &self,
        reg: Registrar,
        period: Period,
        mut each: impl FnMut(u32, Vec<u8>) -> Result<(), AppError>,
        request_id: &str,
    ) -> Result<usize, AppError> {
        let ids = self.k.store().employer_ids().await?;
        let event = Audit::counted(reg.actor(), "export_preetablis", ids.len())
            .fields(&PREETABLI_FIELDS)
            .detail(format!("period={period}"));
        let pass = self.k.recorded_read(event, request_id).await?;
        let mut written = 0;
        for chunk in ids.chunks(1_000) {
            let numbers: HashMap<i64, i64> = self
                .k
                .store()
                .employers_where(false, chunk)
                .await?
                .into_iter()
                .map(|e| (e.id, e.affiliate_number))
                .collect();
            let mut pres = self.k.store().preetablis(chunk, period.number()).await?;
            pres.sort_by_key(|p| numbers.get(&p.employer_id).copied().unwrap_or(0));
            let mut employees = self.employees_of(&pass, &pres).await?;
            for p in &pres {
                let bytes =
                    self.preetabli_of(&pass, p, employees.remove(&p.id).unwrap_or_default())?;
                let number = numbers.get(&p.employer_id).copied().unwrap_or(0);
                each(u32::try_from(number).unwrap_or(0), bytes)?;
                written += 1;
            }
        }
        Ok(written)
    }

    pub(crate) fn preetabli_of(
        &self,
        pass: &Pass,
        pre: &PreetabliRow,
        employees: Vec<(i64, Employee)>,
    ) -> Result<Vec<u8>, AppError> {
        let (transfer_id, _, identity, layout) =
            parse_header(&self.k.unseal(pass, PREETABLI_HEADER, pre.id, &pre.header)?)?;
        ebds::preetabli_bytes(&Preetabli {
            transfer_id,
            identity,
            employees: employees.into_iter().map(|(_, e)| e).collect(),
            layout,
        })
        .map_err(|_| AppError::Internal("préétabli not writable"))
    }

    /// The employees of these préétablis (person, A02 content), by préétabli, in the order
    /// issued: one decryption each, or their lines for préétablis issued before migration 0015.
    pub(crate) async fn employees_of(
        &self,
        pass: &Pass,
        pres: &[PreetabliRow],
    ) -> Result<HashMap<i64, Vec<(i64, Employee)>>, AppError> {
        let mut out = HashMap::with_capacity(pres.len());
        let mut legacy = Vec::new();
        for p in pres {
            match &p.employees {
                Some(sealed) => {
                    let plain = self.k.unseal(pass, PREETABLI_EMPLOYEES, p.id, sealed)?;
                    out.insert(p.id, parse_employees(&plain)?);
                }
                None => legacy.push(p),
            }
        }
        for l in self.preetabli_lines_of(&legacy).await? {
            let plain = self.k.unseal(pass, PREETABLI_LINE, l.id, &l.data)?;
            out.entry(l.preetabli_id)
                .or_insert_with(Vec::new)
                .push((l.person_id, parse_employee(&split(&plain)?)?));
        }
        // Every préétabli has all the employees it lists, or it is corrupt.
        for p in pres {
            if out.get(&p.id).map_or(0, Vec::len) as i64 != p.lines {
                return Err(store::StoreError::Corrupt("préétabli employees").into());
            }
        }
        Ok(out)
    }

    /// The lines of préétablis issued before migration 0015, in order: one range query when
    /// they are close together (issued in one run, in employer order), else one query each.
    pub(crate) async fn preetabli_lines_of(
        &self,
        pres: &[&PreetabliRow],
    ) -> Result<Vec<PreetabliLineRow>, AppError> {
        let needed: i64 = pres.iter().map(|p| p.lines).sum();
        let (Some(lo), Some(hi)) = (
            pres.iter().map(|p| p.first_line).min(),
            pres.iter().map(|p| p.first_line + p.lines).max(),
        ) else {
            return Ok(Vec::new());
        };
        let store = &self.k.store();
        if store::worth_a_range(needed, hi - lo) {
            let wanted: HashSet<i64> = pres.iter().map(|p| p.id).collect();
            Ok(store
                .preetabli_lines(lo, hi - lo)
                .await?
                .into_iter()
                .filter(|l| wanted.contains(&l.preetabli_id))
                .collect())
        } else {
            let mut out = Vec::new();
            for p in pres {
                out.extend(store.preetabli_lines(p.first_line, p.lines).await?);
            }
            Ok(out)
        }
    }
}
