//! Loading a synthetic population through the registry commands, with a progress bar.

use crate::cli::PopulationArgs;
use crate::config::Config;
use crate::failure::Failure;
use app::App;
use clap::Subcommand;
use kernel::{AppError, Registrar};
use registry::{NewEmployer, NewPerson};
use std::path::{Path, PathBuf};
use synth::Population;
use tokio::task::JoinSet;

/// Persons per immatriculation command (one transaction each).
const CHUNK: usize = 2_000;

/// Chunks between two write-ahead-log checkpoints.
const CHECKPOINT_EVERY: usize = 25;

/// What a load produced.
pub struct Loaded {
    pub employers: usize,
    pub persons: usize,
    pub seconds: f64,
}

/// Affiliates the population's employers, immatriculates its persons and links each person to
/// their employer. Two chunks are prepared at once (validation and encryption use both cores);
/// the database serialises the writes.
/// A synthetic employer as the registry takes it.
pub(crate) fn new_employer(e: synth::SynthEmployer) -> NewEmployer {
    NewEmployer {
        name: e.name,
        activity: e.activity,
        city: e.city,
        ice: e.ice,
    }
}

/// A synthetic person as the registry takes it.
pub(crate) fn new_person(p: &synth::SynthPerson) -> NewPerson {
    NewPerson {
        cin: p.cin.clone(),
        last_name: p.last_name.clone(),
        first_name: p.first_name.clone(),
        last_name_ar: p.last_name_ar.clone(),
        first_name_ar: p.first_name_ar.clone(),
        birth_date: p.birth_date.clone(),
        phone: Some(p.phone.clone()),
        email: p.email.clone(),
        address: Some(p.address.clone()),
        rib: Some(p.rib.clone()),
        children: p.children,
    }
}

pub async fn load_through_registry(
    app: &App,
    pop: Population,
    quiet: bool,
) -> Result<Loaded, AppError> {
    let started = std::time::Instant::now();
    let reg = Registrar::operator();
    let eb = crate::cli::bar(pop.employers as u64, "employers", quiet);
    let mut employer_ids = Vec::with_capacity(pop.employers);
    for start in (0..pop.employers).step_by(1_000) {
        let end = (start + 1_000).min(pop.employers);
        let batch: Vec<NewEmployer> = (start..end)
            .map(|i| new_employer(pop.employer(i)))
            .collect();
        let created = app
            .registry()
            .affiliate_employers(reg, &batch, "load")
            .await?;
        employer_ids.extend(created.iter().map(|c| c.employer_id));
        eb.inc(batch.len() as u64);
    }
    eb.finish();
    let employer_ids = std::sync::Arc::new(employer_ids);

    let pb = crate::cli::bar(pop.persons as u64, "persons", quiet);
    let mut tasks: JoinSet<Result<usize, AppError>> = JoinSet::new();
    for (n, start) in (0..pop.persons).step_by(CHUNK).enumerate() {
        // Concurrent writers keep SQLite from ever resetting its write-ahead log: fold it into
        // the database now and then, or it grows without bound. The chunks in flight finish
        // first: the fold holds writers back while it copies and syncs, which at the country's
        // scale (row ids in no order: pages all over the file) took longer than their busy
        // timeout.
        if n % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1 {
            while let Some(done) = tasks.join_next().await {
                pb.inc(done.map_err(|_| AppError::Audit)?? as u64);
            }
            app.kernel().store().checkpoint().await?;
        }
        if tasks.len() >= 2
            && let Some(done) = tasks.join_next().await
        {
            pb.inc(done.map_err(|_| AppError::Audit)?? as u64);
        }
        let app = app.clone();
        let employer_ids = employer_ids.clone();
        tasks.spawn(async move {
            let end = (start + CHUNK).min(pop.persons);
            let people: Vec<synth::SynthPerson> = (start..end).map(|i| pop.person(i)).collect();
            let batch: Vec<NewPerson> = people.iter().map(new_person).collect();
            let created = app.registry().immatriculate(reg, &batch, "load").await?;
            let links: Vec<(i64, i64, String)> = people
                .iter()
                .zip(&created)
                .map(|(p, c)| {
                    (
                        employer_ids[p.employer],
                        c.person_id,
                        "2015-01-01".to_string(),
                    )
                })
                .collect();
            app.registry().link_employments(reg, &links, "load").await?;
            Ok(created.len())
        });
    }
    while let Some(done) = tasks.join_next().await {
        pb.inc(done.map_err(|_| AppError::Audit)?? as u64);
    }
    pb.finish();
    app.kernel().store().checkpoint().await?;
    Ok(Loaded {
        employers: pop.employers,
        persons: pop.persons,
        seconds: started.elapsed().as_secs_f64(),
    })
}

pub(crate) async fn load_population(
    app: &App,
    seed: u64,
    employers: usize,
    persons: usize,
    quiet: bool,
) -> Result<Loaded, Failure> {
    let smig = app
        .kernel()
        .params()
        .smig_at(app.kernel().now().period())
        .map(|s| s.monthly)
        .ok_or_else(|| {
            Failure::Config("no SMIG in the parameter tables for the current period".into())
        })?;
    Ok(load_through_registry(
        app,
        synth::Population::new(seed, employers, persons, smig),
        quiet,
    )
    .await?)
}

#[derive(Subcommand)]
pub enum SynthCommand {
    /// Print the CINs of the first COUNT persons of a synthetic population (for benchmarks).
    Cins {
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value_t = 1_000)]
        count: usize,
    },
    /// Write a synthetic month of declarations: one DS file per AFFEBDS file (from `daman ebds
    /// preetabli --out`), as the employers' payroll software would.
    Month {
        #[command(flatten)]
        population: PopulationArgs,
        /// The directory of AFFEBDS files.
        #[arg(long)]
        preetablis: PathBuf,
        /// Where to write the DS files.
        #[arg(long)]
        out: PathBuf,
        /// Employers in a thousand that declare new employees (entrants without a number).
        #[arg(long, default_value_t = 50)]
        entrants_per_mille: u32,
    },
}

/// `daman load`: a synthetic population through the registry commands.
pub async fn load(app: &App, population: PopulationArgs, quiet: bool) -> Result<(), Failure> {
    let PopulationArgs {
        employers,
        persons,
        seed,
    } = population;
    let loaded = load_population(app, seed, employers, persons, quiet).await?;
    println!(
        "loaded {} employers and {} persons in {:.1} s ({:.0} persons/s)",
        loaded.employers,
        loaded.persons,
        loaded.seconds,
        loaded.persons as f64 / loaded.seconds.max(1e-9)
    );
    Ok(())
}

/// `daman honeytokens`: decoy employers and persons, in identity ranges the synthetic
/// population never uses (CINs with the prefix ZG, company numbers from 11 000 000).
pub async fn honeytokens(
    app: &App,
    persons: usize,
    employers: usize,
    seed: Option<u64>,
) -> Result<(), Failure> {
    let seed = match seed {
        Some(s) => s,
        None => {
            let mut b = [0u8; 8];
            vault::Random::fill(&vault::OsRandom, &mut b)
                .map_err(|e| Failure::Run(e.to_string()))?;
            u64::from_le_bytes(b)
        }
    };
    let pop = synth::Population::new(seed, employers, persons, domain::Centimes(0));
    let e: Vec<NewEmployer> = (0..employers)
        .map(|i| new_employer(pop.employer(10_000_000 + i)))
        .collect();
    let p: Vec<NewPerson> = (0..persons)
        .map(|i| {
            let mut p = new_person(&pop.person(i));
            p.cin = format!(
                "ZG{:06}",
                seed.wrapping_add((i as u64).wrapping_mul(7_919)) % 1_000_000
            );
            p
        })
        .collect();
    let (e, p) = app.registry().seed_honeytokens(&e, &p).await?;
    println!(
        "seeded {} decoy employers and {} decoy persons; their list is in {}",
        e.len(),
        p.len(),
        app.kernel().honeytoken_list().display()
    );
    Ok(())
}

/// `daman synth`: the CINs of a synthetic population, or a month of its declarations.
pub fn synth(cfg: &Config, command: SynthCommand) -> Result<(), Failure> {
    match command {
        SynthCommand::Month {
            population:
                PopulationArgs {
                    employers,
                    persons,
                    seed,
                },
            preetablis,
            out,
            entrants_per_mille,
        } => {
            let params = cfg.params()?;
            let smig = params
                .smig_at(domain::Clock::now(&kernel::SystemClock).period())
                .map(|s| s.monthly)
                .ok_or_else(|| Failure::Config("no SMIG for the current period".into()))?;
            let pop = synth::Population::new(seed, employers, persons, smig);
            let (n, lines) = synth_month(&pop, &params, &preetablis, &out, entrants_per_mille)?;
            println!(
                "wrote {n} declarations ({lines} lines) to {}",
                out.display()
            );
            Ok(())
        }
        SynthCommand::Cins { seed, count } => {
            let pop = synth::Population::new(seed, 1, count, domain::Centimes(0));
            let mut out = String::with_capacity(count * 9);
            for i in 0..count {
                out.push_str(&pop.cin(i));
                out.push('\n');
            }
            print!("{out}");
            Ok(())
        }
    }
}

/// Writes the synthetic month: one DS file per AFFEBDS file in `preetablis`.
pub fn synth_month(
    pop: &synth::Population,
    params: &domain::Parameters,
    preetablis: &Path,
    out: &Path,
    entrants_per_mille: u32,
) -> Result<(usize, usize), Failure> {
    std::fs::create_dir_all(out).map_err(|e| Failure::Config(format!("{}: {e}", out.display())))?;
    let files = crate::cli::files_under(&[preetablis.to_path_buf()])?;
    let pb = crate::cli::bar(files.len() as u64, "declarations", false);
    let (mut n, mut lines) = (0, 0);
    for f in files {
        let bytes = std::fs::read(&f).map_err(|e| Failure::Run(format!("{}: {e}", f.display())))?;
        let pre = ebds::read_preetabli(bytes.as_slice())
            .map_err(|e| Failure::Run(format!("{}: {} errors", f.display(), e.len())))?;
        let ceiling = params
            .ceiling_at(pre.identity.period)
            .ok_or_else(|| Failure::Config("no ceiling for the period".into()))?;
        let d = synth::month::declaration(
            pop,
            &pre,
            synth::month::MonthPlan {
                ceiling,
                entrants_per_mille,
            },
        );
        let ds = ebds::declaration_bytes(&d, Some(params))
            .map_err(|e| Failure::Run(format!("{}: {} errors", f.display(), e.len())))?;
        let path = out.join(synth::month::declaration_file_name(
            pre.identity.affiliate,
            pre.identity.period,
        ));
        std::fs::write(&path, ds).map_err(|e| Failure::Run(format!("{}: {e}", path.display())))?;
        n += 1;
        lines += d.lines.len() + d.entrants.len();
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok((n, lines))
}
