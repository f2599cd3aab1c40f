//! `daman serve` and `daman demo`: the server, its background sweeps, and the demo's guide.

use crate::cli::account::dev_token;
use crate::cli::population::load_population;
use crate::cli::{PopulationArgs, open_app, sealed};
use crate::config::Config;
use crate::failure::Failure;
use app::App;
use domain::{AffiliateNumber, Role};
use identity::{Invitation, Inviter};
use kernel::AppError;
use server::DevTokens;
use std::sync::Arc;

pub(crate) async fn serve(app: App, cfg: &Config) -> Result<(), Failure> {
    let dev_tokens = if cfg.dev_mode {
        tracing::warn!("development mode: bearer tokens from `daman dev-token` are accepted");
        Some(Arc::new(DevTokens::open(&app)?))
    } else {
        None
    };
    let router = server::router(app.clone(), cfg.server(dev_tokens));
    // Every minute, RIB changes whose cooling-off period is over take effect and the queued
    // notices of employment claims go out; every hour, expired authentication rows go.
    let sweeper = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        for minute in 0u64.. {
            tick.tick().await;
            match sweeper.identity().apply_due_rib_changes().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(applied = n, "RIB changes applied"),
                Err(e) => tracing::error!(error = %e, "RIB changes not applied"),
            }
            match sweeper.registry().send_claim_notices().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sent = n, "employment claim notices sent"),
                Err(e) => tracing::error!(error = %e, "employment claim notices not sent"),
            }
            if minute % 60 == 0 {
                match sweeper.identity().purge_expired().await {
                    Ok(n) => tracing::debug!(rows = n, "expired authentication rows purged"),
                    Err(e) => tracing::error!(error = %e, "purge failed"),
                }
            }
        }
    });
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| Failure::Config(format!("cannot listen on {}: {e}", cfg.listen)))?;
    tracing::info!(listen = %cfg.listen, "serving");
    server::serve(listener, router, shutdown_signal())
        .await
        .map_err(|e| Failure::Run(e.to_string()))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}

async fn print_guide(
    app: &App,
    cfg: &Config,
    seed: u64,
    employers: usize,
    persons: usize,
) -> Result<(), Failure> {
    let smig = app
        .kernel()
        .params()
        .smig_at(app.kernel().now().period())
        .map(|s| s.monthly)
        .unwrap_or_default();
    let pop = synth::Population::new(seed, employers, persons, smig);
    let me = pop.person(0);
    let other = pop.person(1);
    let affiliate = format!("{:07}", 1_000_001 + me.employer);
    let agent = dev_token(app, Role::Agent, Some("demo"), 8).await?;
    let insured = dev_token(app, Role::Insured, Some(&me.cin), 8).await?;
    let employer = dev_token(app, Role::EmployerUser, Some(&affiliate), 8).await?;
    let officer = dev_token(app, Role::SecurityOfficer, Some("demo"), 8).await?;
    let base = format!("http://{}", cfg.listen);
    let read = |token: &str, body: String| {
        format!(
            "curl -s {base}/api/v1/persons/read -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -d '{body}'"
        )
    };
    println!(
        "\ndaman is serving on {base} (development mode; all data is synthetic)\n\
         \n  Health:   {base}/healthz   {base}/readyz\n  OpenAPI:  {base}/api/v1/openapi.json\n\
         \nTry (tokens are valid 8 hours; mint more with `daman dev-token --help`):\n\
         \n# An agent finds a person by CIN (masked view, audited):\n{}\n\
         \n# The insured person reads their own record in full:\n{}\n\
         \n# ...but not someone else's (403, and the refusal is audited):\n{}\n\
         \n# Their employer reads the names and number of its employee:\n{}\n\
         \n# A security officer reads no personal data (403):\n{}\n\
         \n# Errors are in the caller's language (Accept-Language: ar):\n{} -H 'Accept-Language: ar'\n\
         ",
        read(
            &agent,
            format!("{{\"cin\":\"{}\",\"purpose\":\"registration\"}}", me.cin)
        ),
        read(
            &insured,
            format!(
                "{{\"cin\":\"{}\",\"purpose\":\"self_service\",\"full\":true}}",
                me.cin
            )
        ),
        read(
            &insured,
            format!("{{\"cin\":\"{}\",\"purpose\":\"self_service\"}}", other.cin)
        ),
        read(
            &employer,
            format!(
                "{{\"cin\":\"{}\",\"purpose\":\"payroll\",\"fields\":[\"last_name\",\"first_name\",\"immatriculation\"],\"full\":true}}",
                me.cin
            )
        ),
        read(
            &officer,
            format!("{{\"cin\":\"{}\",\"purpose\":\"case_review\"}}", me.cin)
        ),
        read(
            &agent,
            "{\"cin\":\"12345\",\"purpose\":\"registration\"}".to_string()
        ),
    );
    print_login_guide(app, cfg, &me.cin, &affiliate).await?;
    println!(
        "\nStop with Ctrl-C. Data stays in {} (keys in {}).",
        cfg.data_dir.display(),
        cfg.key_dir().display()
    );
    Ok(())
}

/// How to log in for real (not with development tokens): the insured person enrols with the
/// phone on record; an employer admin and an agent accept invitations made here.
async fn print_login_guide(
    app: &App,
    cfg: &Config,
    cin: &str,
    affiliate: &str,
) -> Result<(), Failure> {
    const PASSWORD: &str = "olive tree by the sea";
    let base = format!("http://{}", cfg.listen);
    let sms = cfg.sms_file();
    let post = |path: &str, body: &str| {
        format!("curl -s {base}{path} -H 'Content-Type: application/json' -d '{body}'")
    };
    let invite = |role: Role, login: &str, phone: &str, affiliate: Option<&str>| {
        let inv = Invitation {
            login: login.into(),
            phone: phone.into(),
            role,
            affiliate: affiliate.and_then(|a| AffiliateNumber::parse(a).ok()),
            is_admin: role == Role::EmployerUser,
        };
        async move {
            match app.identity().invite(Inviter::Operator, &inv, "demo").await {
                Ok(token) => Ok(token),
                // Run again on the same data: the account exists already.
                Err(AppError::Conflict(_)) => Ok("(already accepted: log in)".to_string()),
                Err(e) => Err(Failure::from(e)),
            }
        }
    };
    let employer_login = format!("rh.{affiliate}@example.ma");
    let employer_invitation = invite(
        Role::EmployerUser,
        &employer_login,
        "+212600000900",
        Some(affiliate),
    )
    .await?;
    let agent_invitation =
        invite(Role::Agent, "agent.demo@example.ma", "+212600000901", None).await?;
    let lines = [
        format!(
            "\nLogging in for real (SMS codes appear in {}, one JSON line each):",
            sms.display()
        ),
        format!("\n# The insured person enrols once, with the phone on record (CIN {cin}):"),
        post(
            "/api/v1/auth/enrol",
            &format!(r#"{{"cin":"{cin}","password":"{PASSWORD}"}}"#),
        ),
        post(
            "/api/v1/auth/enrol/confirm",
            r#"{"enrolment":"ENROLMENT","code":"CODE"}"#,
        ),
        "\n# Then logs in: password, then the code sent by SMS; the answer holds a bearer token"
            .into(),
        r#"# (add "client":"browser" for a __Host- cookie instead):"#.into(),
        post(
            "/api/v1/auth/login",
            &format!(r#"{{"login":"{cin}","password":"{PASSWORD}"}}"#),
        ),
        post("/api/v1/auth/login/sms", r#"{"pending":"PENDING"}"#),
        post(
            "/api/v1/auth/login/verify",
            r#"{"pending":"PENDING","method":"sms","code":"CODE"}"#,
        ),
        format!(
            "\n# A user of employer {affiliate} (its admin, who can invite others) accepts this"
        ),
        format!(
            "# invitation, confirms the code sent to +212600000900, and logs in as {employer_login}:"
        ),
        post(
            "/api/v1/auth/invitations/accept",
            &format!(r#"{{"invitation":"{employer_invitation}","password":"{PASSWORD}"}}"#),
        ),
        post(
            "/api/v1/auth/enrol/confirm",
            &format!(r#"{{"enrolment":"{employer_invitation}","code":"CODE"}}"#),
        ),
        "\n# An agent accepts an invitation the same way (agent.demo@example.ma). Confirming the code"
            .into(),
        "# answers with a passkey_setup token: POST it to /api/v1/auth/passkeys/setup for the options"
            .into(),
        "# of navigator.credentials.create, and the result to /api/v1/auth/passkeys/setup/finish."
            .into(),
        "# Staff log in only with a passkey (a browser or a security key); on the command line, use"
            .into(),
        "# the development token above.".into(),
        post(
            "/api/v1/auth/invitations/accept",
            &format!(r#"{{"invitation":"{agent_invitation}","password":"{PASSWORD}"}}"#),
        ),
        "\nMore invitations: `daman account invite --help`. Details: docs/authentication.md."
            .into(),
    ];
    println!("{}", lines.join("\n"));
    Ok(())
}

/// `daman demo`: a data directory with a synthetic population, served in development mode,
/// with a guide of ready-to-run requests.
pub(crate) async fn demo(cfg: &Config, population: PopulationArgs) -> Result<(), Failure> {
    let PopulationArgs {
        employers,
        persons,
        seed,
    } = population;
    let app = open_app(cfg).await?;
    if app.kernel().store().count_persons().await? == 0 {
        println!(
            "Loading a synthetic population: {employers} employers, {persons} persons (seed {seed})…"
        );
        let loaded = load_population(&app, seed, employers, persons, false).await?;
        println!("Loaded in {:.1} s.", loaded.seconds);
    } else {
        println!(
            "Using the population already in {}.",
            cfg.data_dir.display()
        );
    }
    print_guide(&app, cfg, seed, employers, persons).await?;
    let r = serve(app.clone(), cfg).await;
    sealed(&app, r).await
}
