//! Imports: files read and checked in batches (one transaction each), each accepted whole or
//! rejected whole with every error; a file already accepted is a duplicate and changes nothing.

use domain::{DenyReason, Lang};
use foldhash::{HashMap, HashMapExt};

use crate::Contributions;
use crate::codec::form_number;
use crate::context::Accepted;
use crate::model::{ImportFile, ImportOutcome, ParsedFile, duplicate, rejected};
use crate::pipeline::{IdPool, InFlight, PreparedImport, Unwritten, import_batches};
use kernel::columns::DECLARATION_DIGEST;
use kernel::{AppError, Audit, Clash, Declarant};

impl Contributions {
    /// Imports declaration files (main or complementary), in batches of
    /// [`import_batches`], one transaction each. Each file is accepted whole or rejected
    /// whole with all its errors; a file already accepted is a duplicate and changes nothing.
    pub async fn import_declarations(
        &self,
        who: Declarant,
        files: Vec<ImportFile>,
        lang: Lang,
        request_id: &str,
    ) -> Result<Vec<ImportOutcome>, AppError> {
        let mut out = Vec::with_capacity(files.len());
        let sizes: Vec<u64> = files.iter().map(|f| f.bytes.len() as u64).collect();
        let mut files = files.into_iter();
        for batch in import_batches(&sizes) {
            let parsed = self
                .parse_files(files.by_ref().take(batch.len()).collect())
                .await?;
            out.extend(self.import_parsed(who, parsed, lang, request_id).await?);
        }
        Ok(out)
    }

    /// Reads and checks files against the format (CPU work, off the async threads).
    pub async fn parse_files(&self, files: Vec<ImportFile>) -> Result<Vec<ParsedFile>, AppError> {
        let app = self.clone();
        tokio::task::spawn_blocking(move || {
            files
                .into_iter()
                .map(|f| app.parse_file(f))
                .collect::<Result<Vec<_>, AppError>>()
        })
        .await
        .map_err(|_| AppError::Internal("parse task"))?
    }

    pub(crate) fn parse_file(&self, f: ImportFile) -> Result<ParsedFile, AppError> {
        let digest = self
            .k
            .keyring()
            .blind_index(DECLARATION_DIGEST, &f.bytes)?
            .to_vec();
        let result = ebds::read_declaration(f.bytes.as_slice(), Some(self.k.params()));
        Ok(ParsedFile {
            name: f.name,
            digest,
            result,
        })
    }

    /// Checks parsed files against the registry and records them (one transaction).
    pub async fn import_parsed(
        &self,
        who: Declarant,
        parsed: Vec<ParsedFile>,
        lang: Lang,
        request_id: &str,
    ) -> Result<Vec<ImportOutcome>, AppError> {
        let mut ids = IdPool::exact();
        let prepared = self
            .prepare_import(who, parsed, lang, &Unwritten::default(), &mut ids)
            .await?;
        self.commit_import(who, prepared, request_id).await
    }

    /// Checks a batch against the registry and encrypts what it will write, without writing.
    /// `unwritten` is what the batches before it that may not be committed yet accepted: forms,
    /// files, new persons, employments; the batch is checked against them too.
    pub async fn prepare_import(
        &self,
        who: Declarant,
        parsed: Vec<ParsedFile>,
        lang: Lang,
        unwritten: &Unwritten,
        ids: &mut IdPool,
    ) -> Result<PreparedImport, AppError> {
        if who.is_agent() {
            return Err(AppError::Denied(DenyReason::RoleHasNoAccess));
        }
        let started = std::time::Instant::now();
        let mut ctx = self.context(&parsed, "import").await?;
        self.refuse_decoys(who, &ctx, "import").await?;
        for previous in &unwritten.0 {
            ctx.accepted.extend(previous.accepted.iter().copied());
            ctx.declared.extend(&previous.declared);
        }
        let numbers: HashMap<i64, i64> = ctx
            .employers
            .values()
            .map(|e| (e.id, e.affiliate_number))
            .collect();
        let loaded = started.elapsed();
        let mut outcomes: Vec<Option<ImportOutcome>> = vec![None; parsed.len()];
        let mut rejections = Vec::new();
        let mut accepted: Vec<(usize, Accepted)> = Vec::new();
        // Files that repeat one accepted in this batch: (outcome slot, index in `accepted`).
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        let mut in_batch: HashMap<Vec<u8>, usize> = HashMap::new();
        for (i, p) in parsed.into_iter().enumerate() {
            if let Some(d) = ctx.already_accepted(who, &p) {
                let affiliate = numbers.get(&d.employer_id).copied().unwrap_or(0);
                outcomes[i] = Some(ImportOutcome::Duplicate(duplicate(d, affiliate, &p)?));
                continue;
            }
            if let Some(s) = unwritten.0.iter().find_map(|f| f.digests.get(&p.digest)) {
                outcomes[i] = Some(ImportOutcome::Duplicate(s.clone()));
                continue;
            }
            if let Some(k) = in_batch.get(&p.digest) {
                repeats.push((i, *k));
                continue;
            }
            let decl = match p.result {
                Ok(d) => d,
                Err(errors) => {
                    outcomes[i] = Some(rejected(&errors, lang));
                    rejections.push(errors);
                    continue;
                }
            };
            match self.check(who, &decl, &mut ctx) {
                Ok(c) => {
                    ctx.accepted.insert((
                        c.employer.id,
                        decl.identity.period.number(),
                        form_number(decl.form),
                    ));
                    in_batch.insert(p.digest.clone(), accepted.len());
                    accepted.push((
                        i,
                        Accepted {
                            employer: c.employer,
                            preetabli_id: c.preetabli_id,
                            decl,
                            digest: p.digest,
                            persons: c.persons,
                            claims: c.claims,
                        },
                    ));
                }
                Err(errors) => {
                    outcomes[i] = Some(rejected(&errors, lang));
                    rejections.push(errors);
                }
            }
        }
        let checked = started.elapsed();
        let mut in_flight = InFlight::default();
        let (batch, summaries) = self.build_accepted(&accepted, ids, &mut in_flight).await?;
        for ((i, a), s) in accepted.iter().zip(&summaries) {
            outcomes[*i] = Some(ImportOutcome::Accepted(s.clone()));
            in_flight.digests.insert(a.digest.clone(), s.clone());
            in_flight.accepted.insert((
                a.employer.id,
                a.decl.identity.period.number(),
                form_number(a.decl.form),
            ));
        }
        for (i, k) in repeats {
            let s = summaries.get(k).ok_or(AppError::Internal("repeat"))?;
            outcomes[i] = Some(ImportOutcome::Duplicate(s.clone()));
        }
        tracing::debug!(
            files = outcomes.len(),
            context_ms = loaded.as_millis() as u64,
            check_ms = (checked - loaded).as_millis() as u64,
            build_ms = (started.elapsed() - checked).as_millis() as u64,
            "import prepared"
        );
        Ok(PreparedImport {
            outcomes,
            rejections,
            batch,
            in_flight,
        })
    }

    /// Writes a prepared batch in one transaction, then audits it.
    pub async fn commit_import(
        &self,
        who: Declarant,
        prepared: PreparedImport,
        request_id: &str,
    ) -> Result<Vec<ImportOutcome>, AppError> {
        self.commit(
            who,
            prepared,
            "import_declarations",
            String::new(),
            request_id,
        )
        .await
    }

    pub(crate) async fn commit(
        &self,
        who: Declarant,
        prepared: PreparedImport,
        action: &'static str,
        detail: String,
        request_id: &str,
    ) -> Result<Vec<ImportOutcome>, AppError> {
        let started = std::time::Instant::now();
        self.k
            .store()
            .insert_import(&prepared.batch)
            .await
            .map_err(|e| match e {
                store::StoreError::Conflict("rectified") => AppError::Conflict(Clash::Rectified),
                store::StoreError::Conflict(_) => AppError::Conflict(Clash::Declaration),
                e => AppError::Store(e),
            })?;
        tracing::debug!(
            lines = prepared.lines(),
            insert_ms = started.elapsed().as_millis() as u64,
            "import committed"
        );
        // Each person an accepted entrant line names by number, CIN and name is told from the
        // queue of claims (`Registry::send_claim_notices`), and confirms or refuses in their
        // account.
        let outcomes = prepared.outcomes;
        let (a, r, d) = outcomes.iter().fold((0, 0, 0), |(a, r, d), o| match o {
            Some(ImportOutcome::Accepted(_)) => (a + 1, r, d),
            Some(ImportOutcome::Rejected { .. }) => (a, r + 1, d),
            _ => (a, r, d + 1),
        });
        Audit::counted(who.actor(), action, a)
            .detail(format!("accepted={a} rejected={r} duplicate={d}{detail}"))
            .write(&self.k, request_id)
            .await?;
        for errors in &prepared.rejections {
            self.keep_rejection(who, errors).await;
        }
        outcomes
            .into_iter()
            .map(|o| o.ok_or(AppError::Internal("import outcome")))
            .collect()
    }
}
