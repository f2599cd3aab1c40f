//! Text messages: every SMS daman sends goes through here, within the limits (per number,
//! per hour and per day; and for everyone, per hour), and is recorded by the number's blind
//! index. Codes are the identity crate's; notices about an account (a phone or RIB change)
//! are sent outside the number's own quota, so that spending it cannot silence them.

use crate::{AppError, Kernel};
use domain::{Lang, Phone};
use std::sync::Arc;

/// Where SMS go and how many may go.
#[derive(Clone)]
pub struct SmsConfig {
    /// Where SMS go; `None` refuses to send (commands that never send need none).
    pub sender: Option<Arc<dyn auth::SmsSender>>,
    pub per_number_hour: i64,
    pub per_number_day: i64,
    pub global_hour: i64,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            sender: None,
            per_number_hour: 5,
            per_number_day: 10,
            global_hour: 10_000,
        }
    }
}

/// Who an SMS is for, which decides the limits it is sent within ([`Kernel::sms_quota`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsUse {
    /// Asked for without an account (an enrolment's code, or its refusal): the number's own
    /// quota, and at most [`ANONYMOUS_SHARE_PERCENT`] of the fund-wide hourly cap, so that
    /// anonymous requests cannot spend the reserve logins and security notices need.
    Anonymous,
    /// A code for an account's own login, step-up, phone change or invitation: the number's
    /// quota and the whole cap.
    Account,
    /// A notice about the account (a phone or RIB change, a claim): outside the number's own
    /// quota (spending it cannot silence them), within the whole cap.
    Notice,
}

/// The share of the fund-wide hourly SMS cap that anonymous requests may use.
pub const ANONYMOUS_SHARE_PERCENT: i64 = 80;

/// Leave to send one SMS to a number: its quota was checked ([`Kernel::sms_quota`]).
pub struct SmsTicket(Vec<u8>);

impl Kernel {
    /// Checks the SMS limits for `to` for this use ([`SmsUse`]): the number's own (not for
    /// notices) and the fund-wide one (a share of it for anonymous requests). Returns the
    /// number's blind index for the send log.
    pub async fn sms_quota(&self, to: &Phone, use_: SmsUse) -> Result<SmsTicket, AppError> {
        let per_number = use_ != SmsUse::Notice;
        let cfg = &self.inner.sms;
        let now = self.now().0;
        let bidx = self
            .keyring()
            .blind_index(crate::columns::SMS_PHONE_INDEX, to.as_str().as_bytes())?
            .to_vec();
        let store = &self.inner.store;
        const HOUR: i64 = 3_600_000_000;
        let over = (per_number
            && (store.sms_sent_since(Some(&bidx), now - HOUR).await? >= cfg.per_number_hour
                || store.sms_sent_since(Some(&bidx), now - 24 * HOUR).await?
                    >= cfg.per_number_day))
            || store.sms_sent_since(None, now - HOUR).await?
                >= match use_ {
                    SmsUse::Anonymous => cfg.global_hour * ANONYMOUS_SHARE_PERCENT / 100,
                    SmsUse::Account | SmsUse::Notice => cfg.global_hour,
                };
        if over {
            return Err(AppError::SmsLimit);
        }
        Ok(SmsTicket(bidx))
    }

    /// Sends a text whose quota was checked.
    pub async fn deliver_sms(
        &self,
        ticket: SmsTicket,
        to: &Phone,
        text: &str,
    ) -> Result<(), AppError> {
        let bidx = ticket.0;
        let sender = self
            .inner
            .sms
            .sender
            .as_ref()
            .ok_or(AppError::Unavailable)?;
        self.inner.store.record_sms(&bidx, self.now().0).await?;
        sender.send(to, text).await.map_err(|e| {
            tracing::error!(error = %e, sender = sender.kind(), "SMS not sent");
            AppError::Unavailable
        })
    }

    /// Sends a notice about the account (a phone or RIB change): outside the number's own quota,
    /// within the global one.
    pub async fn send_notice(&self, to: &Phone, text: &str) -> Result<(), AppError> {
        let ticket = self.sms_quota(to, SmsUse::Notice).await?;
        self.deliver_sms(ticket, to, text).await
    }
}

impl Kernel {
    /// Tells a person that an employer declared employing them, to confirm or refuse in their
    /// account: audited as daman reading the phone on record for that reason, then sent
    /// outside the number's quota (within the global one). A person without a phone on record
    /// still finds the claim in their account. Sent from the queue of claims
    /// (`Registry::send_claim_notices`), never while the claim is made.
    pub async fn notify_claim(&self, person: i64, request_id: &str) -> Result<(), AppError> {
        let event = crate::Audit::counted(crate::Actor::system(), "notify_claim", 1)
            .subject(person)
            .fields(&[domain::PersonField::Phone])
            .detail("reason=an employer declared employing them: confirm or refuse");
        let pass = self.recorded_read(event, request_id).await?;
        let Some(phone) = self.phone_on_record(&pass, person).await? else {
            return Ok(());
        };
        // The hourly cap reached or the sender down: an error, so the notice stays queued.
        self.send_notice(&phone, claim_notice()).await
    }
}

/// The notice of an employment claim, in Arabic and French (the person's language is not known
/// to the declaration that made it).
pub fn claim_notice() -> &'static str {
    "ضمان: صرح مشغل بأنك تعمل لديه. أكد أو ارفض في حسابك. \
     daman : un employeur declare vous employer. Confirmez ou refusez dans votre espace."
}

/// The notice to a number that was just replaced.
pub fn phone_changed_notice(lang: Lang) -> &'static str {
    match lang {
        Lang::Ar => "ضمان: تم تغيير رقم هاتفك. إن لم تكن أنت، اتصل بالصندوق فورًا.",
        Lang::Fr => {
            "daman : votre numero de telephone a ete change. Si ce n'est pas vous, appelez la caisse."
        }
        Lang::En => "daman: your phone number was changed. If this was not you, call the fund.",
    }
}
