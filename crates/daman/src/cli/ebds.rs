//! `daman ebds …`: préétablis out, declarations in, files back, payments, statements, the
//! ledger check; and `daman synth month`, which writes a synthetic month of declarations.

use crate::failure::Failure;
use app::App;
use clap::Subcommand;
use contributions::{ImportFile, ImportOutcome};
use domain::{Centimes, Date, Lang, Period};
use indicatif::ProgressBar;
use kernel::{Declarant, Registrar};
use ledger::PaymentOutcome;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum EbdsCommand {
    /// Issue the préétabli of PERIOD to every employer that has none yet; with --out, also
    /// write each employer's AFFEBDS file there.
    Preetabli {
        /// AAAAMM.
        #[arg(long)]
        period: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Import declaration files (DS_…, main or complementary): files, or directories of them.
    /// Each file is accepted whole or rejected whole with all its errors; a file already
    /// accepted changes nothing. Exit code 4 when some files were rejected.
    Import {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Language of the error messages: fr, ar or en.
        #[arg(long, default_value = "fr")]
        lang: String,
        #[arg(long)]
        quiet: bool,
    },
    /// Check declaration files against the format without importing them (nothing is
    /// written): every error of every file, and how fast they were read.
    Validate {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Language of the error messages: fr, ar or en.
        #[arg(long, default_value = "fr")]
        lang: String,
    },
    /// Replace an accepted declaration with a corrected file for the same employer, period and
    /// form. The original is kept, as it was, marked rectified; the ledger reverses it and posts
    /// the correction. Exit code 4 when the file is rejected.
    Rectify {
        #[arg(long)]
        declaration: i64,
        file: PathBuf,
        /// Language of the error messages: fr, ar or en.
        #[arg(long, default_value = "fr")]
        lang: String,
    },
    /// Write an accepted declaration back as the e-BDS file that was accepted, byte for byte.
    Export {
        #[arg(long)]
        declaration: i64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Record a payment (once per bank reference).
    Pay {
        #[arg(long)]
        affiliate: String,
        #[arg(long)]
        period: String,
        /// MAD, e.g. 1507.60.
        #[arg(long)]
        amount: String,
        #[arg(long)]
        reference: String,
        /// YYYY-MM-DD.
        #[arg(long)]
        date: String,
    },
    /// Post the late-payment surcharges due on a date (default today): idempotent.
    Surcharges {
        /// YYYY-MM-DD.
        #[arg(long)]
        at: Option<String>,
    },
    /// An employer's statement: owed, paid and balance per period.
    Statement {
        #[arg(long)]
        affiliate: String,
    },
    /// The whole ledger: every account's balance, and whether every entry balances.
    Check {
        #[arg(long)]
        period: Option<String>,
    },
}

fn bad(e: impl std::fmt::Display) -> Failure {
    Failure::Config(e.to_string())
}

fn period(s: &str) -> Result<Period, Failure> {
    Period::parse(s).map_err(|e| bad(e.message(Lang::En)))
}

fn affiliate(s: &str) -> Result<u32, Failure> {
    domain::AffiliateNumber::parse(s)
        .map(|a| a.value())
        .map_err(|e| bad(e.message(Lang::En)))
}

/// MAD with up to two decimals, to centimes (no floating point).
fn mad(s: &str) -> Result<Centimes, Failure> {
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    let ok = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.len() <= 2
        && frac.bytes().all(|b| b.is_ascii_digit());
    let w: i64 = whole
        .parse()
        .ok()
        .filter(|_| ok)
        .ok_or_else(|| bad("amount: MAD like 1507.60"))?;
    let f: i64 = format!("{frac:0<2}").parse().unwrap_or(0);
    w.checked_mul(100)
        .and_then(|c| c.checked_add(f))
        .map(Centimes)
        .ok_or_else(|| bad("amount too large"))
}

/// Reads the next batch of an import from `files`: until it closes ([`contributions::BatchCut`]) or the
/// files run out.
fn read_batch(files: &mut std::slice::Iter<'_, PathBuf>) -> Result<Vec<ImportFile>, Failure> {
    let (mut out, mut cut) = (Vec::new(), contributions::BatchCut::default());
    for p in files.by_ref() {
        let read = std::fs::read(p).map_err(|e| Failure::Run(format!("{}: {e}", p.display())))?;
        let full = cut.add(read.len() as u64);
        out.push(ImportFile {
            name: p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
            bytes: read,
        });
        if full {
            break;
        }
    }
    Ok(out)
}

/// What an import did, in numbers.
#[derive(Debug, Default, Clone, Copy)]
pub struct ImportTotals {
    pub files: usize,
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub lines: i64,
    pub employer_share: i64,
    pub employee_share: i64,
    pub seconds: f64,
}

/// Imports files in batches, in three stages running at once: reading and parsing, checking
/// and encrypting, writing. Each hands its batches to the next through a queue of one, so the
/// stages before the writer keep working while it waits on the disk.
pub async fn import(
    app: &App,
    paths: &[PathBuf],
    lang: Lang,
    quiet: bool,
) -> Result<ImportTotals, Failure> {
    let started = std::time::Instant::now();
    let files = crate::cli::files_under(paths)?;
    let n = files.len() as i64;
    let pb = crate::cli::bar(files.len() as u64, "files", quiet);
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let producer = {
        let app = app.clone();
        tokio::spawn(async move {
            let files = std::sync::Arc::new(files);
            let mut next = 0;
            while next < files.len() {
                let (read, done) = {
                    let files = files.clone();
                    tokio::task::spawn_blocking(move || {
                        let mut it = files[next..].iter();
                        let read = read_batch(&mut it);
                        (read, files.len() - it.len())
                    })
                    .await
                    .map_err(|_| Failure::Run("reader task".into()))?
                };
                next = done;
                let parsed = match read {
                    Ok(files) => app
                        .contributions()
                        .parse_files(files)
                        .await
                        .map_err(Failure::from),
                    Err(e) => Err(e),
                };
                let stop = parsed.is_err();
                if tx.send(parsed).await.is_err() || stop {
                    break;
                }
            }
            Ok::<(), Failure>(())
        })
    };
    let who = Declarant::operator();
    // The writer commits the prepared batches in order and counts their outcomes.
    let (to_writer, mut batches) =
        tokio::sync::mpsc::channel::<(contributions::PreparedImport, Vec<String>)>(1);
    let writer = {
        let (app, pb) = (app.clone(), pb.clone());
        let mut t = ImportTotals {
            files: n as usize,
            ..Default::default()
        };
        tokio::spawn(async move {
            while let Some((prepared, names)) = batches.recv().await {
                let outcomes = app
                    .contributions()
                    .commit_import(who, prepared, "cli")
                    .await?;
                report(&mut t, &pb, lang, &names, &outcomes);
            }
            Ok::<ImportTotals, Failure>(t)
        })
    };
    let mut ids = contributions::IdPool::blocks(1 << 20);
    // Ids of the declarations and ledger entries of the whole import (at most one
    // declaration a file, and for each its entry and at most one allocation), taken now;
    // lines, persons and employments in blocks of 2^20 as they are needed.
    // Taking a block needs the write lock: a batch being prepared then waits, at most, for
    // the batch being written (one transaction of at most a batch's bytes). Unused ids are gaps.
    ids.reserve(app.kernel().store(), "declaration", n).await?;
    ids.reserve(app.kernel().store(), "ledger_entry", 2 * n)
        .await?;
    // What the batches the writer has not committed yet accepted: the next batch is checked
    // against them (as many as `Unwritten::DEPTH`: the writer's and the one in its queue).
    let mut unwritten = contributions::Unwritten::default();
    let mut failed = None;
    while let Some(parsed) = rx.recv().await {
        if to_writer.is_closed() {
            // The writer stopped on an error, which it returns below.
            break;
        }
        let prepared = async {
            let parsed = parsed?;
            let names: Vec<String> = parsed.iter().map(|p| p.name.clone()).collect();
            let prepared = app
                .contributions()
                .prepare_import(who, parsed, lang, &unwritten, &mut ids)
                .await?;
            Ok::<_, Failure>((prepared, names))
        };
        let (mut prepared, names) = match prepared.await {
            Ok(p) => p,
            Err(e) => {
                failed = Some(e);
                break;
            }
        };
        unwritten.push(std::mem::take(&mut prepared.in_flight));
        if to_writer.send((prepared, names)).await.is_err() {
            break;
        }
    }
    // On an error the batches already handed to the writer are still written and counted
    // before the error is returned: nothing is left half done behind it.
    drop((to_writer, rx));
    let written = writer.await.map_err(|_| Failure::Run("writer task".into()));
    if let Some(e) = failed {
        pb.finish_and_clear();
        return Err(e);
    }
    let mut t = written??;
    producer
        .await
        .map_err(|_| Failure::Run("reader task".into()))??;
    pb.finish_and_clear();
    // Fold SQLite's write-ahead log into the database: the files on disk are the data.
    app.kernel().store().checkpoint().await?;
    t.seconds = started.elapsed().as_secs_f64();
    Ok(t)
}

/// Counts the outcomes of a batch and reports its rejected files with their errors.
fn report(
    t: &mut ImportTotals,
    pb: &ProgressBar,
    lang: Lang,
    names: &[String],
    outcomes: &[ImportOutcome],
) {
    for (name, o) in names.iter().zip(outcomes) {
        match o {
            ImportOutcome::Accepted(s) => {
                t.accepted += 1;
                t.lines += s.lines + s.entrants;
                t.employer_share += s.employer_share.0;
                t.employee_share += s.employee_share.0;
            }
            ImportOutcome::Duplicate(_) => t.duplicates += 1,
            ImportOutcome::Rejected { errors } => {
                t.rejected += 1;
                pb.suspend(|| {
                    eprintln!("{name}: {}", rejected_label(lang));
                    for e in errors {
                        eprintln!("  {}", e.message_line(lang));
                    }
                });
            }
        }
    }
    pb.inc(outcomes.len() as u64);
}

fn rejected_label(lang: Lang) -> &'static str {
    match lang {
        Lang::Fr => "rejeté",
        Lang::Ar => "مرفوض",
        Lang::En => "rejected",
    }
}

trait MessageLine {
    fn message_line(&self, lang: Lang) -> String;
}

impl MessageLine for contributions::ErrorView {
    fn message_line(&self, lang: Lang) -> String {
        let line = match lang {
            Lang::Fr => "ligne",
            Lang::Ar => "السطر",
            Lang::En => "line",
        };
        if self.field.is_empty() {
            format!("{line} {}: {}", self.line, self.message)
        } else {
            format!(
                "{line} {}, {}, {} = «{}»: {}",
                self.line, self.record, self.field, self.found, self.message
            )
        }
    }
}

pub async fn run(app: &App, command: EbdsCommand) -> Result<(), Failure> {
    match command {
        EbdsCommand::Preetabli { period: p, out } => {
            let p = period(&p)?;
            let started = std::time::Instant::now();
            let n = app
                .contributions()
                .issue_preetablis(Registrar::operator(), p, &[], "cli")
                .await?;
            println!(
                "issued {n} préétablis for {p} in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            if let Some(dir) = out {
                let written = write_preetablis(app, p, &dir).await?;
                println!("wrote {written} AFFEBDS files to {}", dir.display());
            }
            Ok(())
        }
        EbdsCommand::Import { paths, lang, quiet } => {
            let lang = Lang::from_accept_language(&lang);
            let t = import(app, &paths, lang, quiet).await?;
            println!(
                "{} files: {} accepted, {} duplicates, {} rejected; {} lines in {:.1} s ({:.0} lines/s); employer share {}, employee share {}, total {} MAD",
                t.files,
                t.accepted,
                t.duplicates,
                t.rejected,
                t.lines,
                t.seconds,
                t.lines as f64 / t.seconds.max(1e-9),
                Centimes(t.employer_share),
                Centimes(t.employee_share),
                Centimes(t.employer_share + t.employee_share)
            );
            if t.rejected > 0 {
                return Err(Failure::Rejected(t.rejected));
            }
            Ok(())
        }
        EbdsCommand::Validate { paths, lang } => validate(app, &paths, &lang),
        EbdsCommand::Rectify {
            declaration,
            file,
            lang,
        } => rectify(app, declaration, &file, &lang).await,
        EbdsCommand::Export { declaration, out } => {
            let bytes = app
                .contributions()
                .declaration_file(Declarant::operator(), declaration, "cli")
                .await?;
            std::fs::write(&out, &bytes)
                .map_err(|e| Failure::Run(format!("{}: {e}", out.display())))?;
            println!("wrote {} ({} bytes)", out.display(), bytes.len());
            Ok(())
        }
        EbdsCommand::Pay {
            affiliate: a,
            period: p,
            amount,
            reference,
            date,
        } => pay(app, &a, &p, &amount, reference, &date).await,
        EbdsCommand::Surcharges { at } => {
            let at = match at {
                Some(d) => Date::parse("at", &d).map_err(|e| bad(e.message(Lang::En)))?,
                None => app.kernel().now().date(),
            };
            let run = app
                .ledger()
                .post_surcharges(Registrar::operator(), at, "cli")
                .await?;
            println!(
                "posted {} surcharge entries, {} MAD, as of {at}",
                run.entries, run.total
            );
            Ok(())
        }
        EbdsCommand::Statement { affiliate: a } => statement(app, &a).await,
        EbdsCommand::Check { period: p } => check(app, p.as_deref()).await,
    }
}

/// `daman ebds validate`: the format's rules only, nothing imported.
fn validate(app: &App, paths: &[PathBuf], lang: &str) -> Result<(), Failure> {
    let lang = Lang::from_accept_language(lang);
    let started = std::time::Instant::now();
    let files = crate::cli::files_under(paths)?;
    let (mut lines, mut bad) = (0usize, 0usize);
    for f in &files {
        let bytes = std::fs::read(f).map_err(|e| Failure::Run(format!("{}: {e}", f.display())))?;
        match ebds::read_declaration(bytes.as_slice(), Some(app.kernel().params())) {
            Ok(d) => lines += d.lines.len() + d.entrants.len(),
            Err(errors) => {
                bad += 1;
                eprintln!("{}: {}", f.display(), rejected_label(lang));
                for e in errors {
                    eprintln!("  {}", e.message(lang));
                }
            }
        }
    }
    let s = started.elapsed().as_secs_f64();
    println!(
        "{} files, {} valid ({lines} lines), {bad} with errors, in {s:.2} s ({:.0} lines/s)",
        files.len(),
        files.len() - bad,
        lines as f64 / s.max(1e-9)
    );
    if bad > 0 {
        return Err(Failure::Rejected(bad));
    }
    Ok(())
}

/// `daman ebds rectify`: a corrected file replaces an accepted declaration.
async fn rectify(app: &App, declaration: i64, file: &Path, lang: &str) -> Result<(), Failure> {
    let lang = Lang::from_accept_language(lang);
    let bytes =
        std::fs::read(file).map_err(|e| Failure::Run(format!("{}: {e}", file.display())))?;
    let name = file.display().to_string();
    let outcome = app
        .contributions()
        .rectify_declaration(
            Declarant::operator(),
            declaration,
            ImportFile { name, bytes },
            lang,
            "cli",
        )
        .await?;
    match outcome {
        ImportOutcome::Accepted(s) => {
            println!(
                "declaration {declaration} rectified by declaration {}: {} lines, total {} MAD",
                s.declaration_id,
                s.lines + s.entrants,
                s.total
            );
            Ok(())
        }
        ImportOutcome::Duplicate(s) => {
            println!(
                "{}: already accepted as declaration {}: nothing changed",
                file.display(),
                s.declaration_id
            );
            Ok(())
        }
        ImportOutcome::Rejected { errors } => {
            eprintln!("{}: {}", file.display(), rejected_label(lang));
            for e in &errors {
                eprintln!("  {}", e.message_line(lang));
            }
            Err(Failure::Rejected(1))
        }
    }
}

/// `daman ebds pay`: a payment, once per bank reference.
async fn pay(
    app: &App,
    a: &str,
    p: &str,
    amount: &str,
    reference: String,
    date: &str,
) -> Result<(), Failure> {
    let paid_on = Date::parse("date", date).map_err(|e| bad(e.message(Lang::En)))?;
    let payment = ledger::NewPayment {
        affiliate_number: affiliate(a)?,
        period: period(p)?,
        amount: mad(amount)?,
        bank_reference: reference,
        paid_on,
    };
    let outcome = app
        .ledger()
        .record_payment(Registrar::operator(), &payment, "cli")
        .await?;
    match outcome {
        PaymentOutcome::Recorded(v) => {
            println!("recorded {} MAD ({})", v.amount, v.bank_reference)
        }
        PaymentOutcome::AlreadyRecorded(v) => {
            println!(
                "already recorded: {} MAD ({}); nothing changed",
                v.amount, v.bank_reference
            )
        }
    }
    Ok(())
}

/// `daman ebds statement`: an employer's periods, owed, surcharges, paid, balance.
async fn statement(app: &App, a: &str) -> Result<(), Failure> {
    let s = app
        .ledger()
        .statement(Declarant::operator(), affiliate(a)?, "cli")
        .await?;
    println!(
        "{:<8} {:<10} {:>14} {:>14} {:>14} {:>14}",
        "period", "due", "owed", "surcharges", "paid", "balance"
    );
    for p in &s.periods {
        println!(
            "{:<8} {:<10} {:>14} {:>14} {:>14} {:>14}",
            p.period.to_string(),
            p.due_date,
            p.owed.to_string(),
            p.surcharges.to_string(),
            p.paid.to_string(),
            p.balance.to_string()
        );
    }
    println!(
        "{:<19} {:>14} {:>14} {:>14} {:>14}",
        "total",
        s.owed.to_string(),
        Centimes(s.periods.iter().map(|p| p.surcharges.0).sum()).to_string(),
        s.paid.to_string(),
        s.balance.to_string()
    );
    Ok(())
}

/// `daman ebds check`: every account's balance, and whether the ledger balances.
async fn check(app: &App, p: Option<&str>) -> Result<(), Failure> {
    let p = p.map(period).transpose()?;
    let v = app.ledger().ledger_check(p).await?;
    for a in &v.accounts {
        println!("{:<48} {:>18}", a.account, a.balance.to_string());
    }
    if v.balanced {
        println!("the ledger balances: every entry sums to zero");
        Ok(())
    } else {
        Err(Failure::Run(format!(
            "the ledger does not balance: {} entries",
            v.unbalanced_entries
        )))
    }
}

/// Writes the AFFEBDS file of every employer's préétabli for the period.
async fn write_preetablis(app: &App, p: Period, dir: &Path) -> Result<usize, Failure> {
    std::fs::create_dir_all(dir).map_err(|e| bad(format!("{}: {e}", dir.display())))?;
    let pb = crate::cli::bar(
        app.kernel().store().employer_ids().await?.len() as u64,
        "préétablis",
        false,
    );
    let written = app
        .contributions()
        .each_preetabli(
            Registrar::operator(),
            p,
            |a, bytes| {
                let path = dir.join(synth::month::preetabli_file_name(a, p));
                pb.inc(1);
                std::fs::write(&path, bytes)
                    .map_err(|_| kernel::AppError::Internal("cannot write a préétabli file"))
            },
            "cli",
        )
        .await?;
    pb.finish_and_clear();
    Ok(written)
}
