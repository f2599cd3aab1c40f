//! Loading a synthetic population through the registry commands, with a progress bar.

use app::App;
use indicatif::{ProgressBar, ProgressStyle};
use kernel::{AppError, Registrar};
use registry::{NewEmployer, NewPerson};
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

/// A progress bar: `what`, position, rate and time left.
pub(crate) fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
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

pub async fn load(app: &App, pop: Population, quiet: bool) -> Result<Loaded, AppError> {
    let started = std::time::Instant::now();
    let reg = Registrar::operator();
    let eb = if quiet {
        ProgressBar::hidden()
    } else {
        bar(pop.employers as u64, "employers")
    };
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

    let pb = if quiet {
        ProgressBar::hidden()
    } else {
        bar(pop.persons as u64, "persons")
    };
    let mut tasks: JoinSet<Result<usize, AppError>> = JoinSet::new();
    for (n, start) in (0..pop.persons).step_by(CHUNK).enumerate() {
        // Concurrent writers keep SQLite from ever resetting its write-ahead log: fold it into
        // the database now and then, or it grows without bound.
        if n % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1 {
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
