//! `daman account` (invite, disable, enable) and `daman dev-token`.

use crate::cli::RoleArg;
use crate::failure::Failure;
use app::App;
use clap::Subcommand;
use domain::{AffiliateNumber, Cin, Immatriculation, Role};
use identity::{Invitation, Inviter};
use kernel::{AppError, Binding, Subject};
use server::DevTokens;

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Invite a user: prints the invitation token to hand over (valid 72 hours). The invitee
    /// accepts it with a password and a code sent to PHONE (POST /api/v1/auth/invitations/accept).
    Invite {
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The login name (letters, digits and at least one of . _ @ -).
        #[arg(long)]
        login: String,
        /// The invitee's mobile number (+212…).
        #[arg(long)]
        phone: String,
        /// employer-user: the employer's affiliation number.
        #[arg(long)]
        affiliate: Option<String>,
        /// employer-user: may invite the employer's other users.
        #[arg(long)]
        admin: bool,
    },
    /// Disable an account: it can no longer log in and its sessions end at once.
    Disable {
        #[arg(long)]
        login: String,
    },
    /// Enable a disabled account again.
    Enable {
        #[arg(long)]
        login: String,
    },
}

pub(crate) async fn account(app: &App, command: AccountCommand) -> Result<(), Failure> {
    match command {
        AccountCommand::Invite {
            role,
            login,
            phone,
            affiliate,
            admin,
        } => {
            let affiliate = affiliate
                .as_deref()
                .map(AffiliateNumber::parse)
                .transpose()
                .map_err(AppError::from)?;
            let token = app
                .identity()
                .invite(
                    Inviter::Operator,
                    &Invitation {
                        login,
                        phone,
                        role: role.role(),
                        affiliate,
                        is_admin: admin,
                    },
                    "cli",
                )
                .await?;
            println!("{token}");
            Ok(())
        }
        AccountCommand::Disable { login } => {
            app.identity()
                .set_account_disabled(&login, true, "cli")
                .await?;
            println!("disabled; its sessions have ended");
            Ok(())
        }
        AccountCommand::Enable { login } => {
            app.identity()
                .set_account_disabled(&login, false, "cli")
                .await?;
            println!("enabled");
            Ok(())
        }
    }
}

pub(crate) async fn dev_token(
    app: &App,
    role: Role,
    subject: Option<&str>,
    hours: i64,
) -> Result<String, Failure> {
    let usage = |m: &str| Failure::Config(m.to_string());
    let (binding, label) = match role {
        Role::Insured => {
            let s = subject.ok_or_else(|| {
                usage("--subject (immatriculation or CIN) is required for an insured person")
            })?;
            let subj = match Immatriculation::parse(s) {
                Ok(i) => Subject::Immatriculation(i),
                Err(_) => {
                    Subject::Cin(Cin::parse(s).map_err(|e| usage(&e.message(domain::Lang::En)))?)
                }
            };
            // Named after the opaque person id, never the identifier.
            (Binding::Person(subj), None)
        }
        Role::EmployerUser => {
            let s = subject.ok_or_else(|| {
                usage("--subject (affiliation number) is required for an employer user")
            })?;
            let a = AffiliateNumber::parse(s).map_err(|e| usage(&e.message(domain::Lang::En)))?;
            (Binding::Employer(a), None)
        }
        Role::Agent | Role::SecurityOfficer => (
            Binding::None,
            Some(format!(
                "dev:{}:{}",
                role.as_str(),
                subject.unwrap_or("default")
            )),
        ),
    };
    let principal = app
        .kernel()
        .ensure_principal(label.as_deref(), role, &binding)
        .await?;
    let tokens = DevTokens::open(app)?;
    Ok(tokens.mint(
        principal.id,
        app.kernel()
            .now()
            .plus_seconds(hours.clamp(1, 24 * 30) * 3600),
    ))
}
