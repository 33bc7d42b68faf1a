//! SLA clocks at work: each pass of the notifier (every second, or when
//! a test moves the server's clock) looks at the unresolved conversations
//! of every inbox with an SLA policy, warns the team once per deadline a
//! fifth of its target before it, and records each missed deadline once
//! (`sla_breaches`, for reports). Both are `conversation.sla_warning` /
//! `conversation.sla_breached` events for the team: the workspace row
//! shows them live and the push worker tells the inbox's agents.

use crate::domain::sla::{SlaClock, SlaFacts};
use crate::domain::time::Micros;
use crate::domain::ConversationStatus;
use crate::store::{ConversationFilter, ConversationRecord, InboxRecord, Store};

/// The clock `c` runs against in `inbox`, if the inbox has a policy.
pub fn clock_of(inbox: &InboxRecord, c: &ConversationRecord) -> Option<SlaClock> {
    inbox.sla.as_ref()?.clock(
        inbox.business_hours.as_ref(),
        &SlaFacts {
            created_at: c.created_at,
            first_reply_at: c.first_reply_at,
            waiting_from: c.waiting_from,
            resolved: c.status == ConversationStatus::Resolved,
        },
    )
}

/// One pass at `now` (the server's clock): warnings and breaches due.
pub async fn sweep(store: &Store, now: Micros) -> crate::store::Result<()> {
    for inbox in store.inboxes()?.into_iter().filter(|i| i.sla.is_some()) {
        let page = store.list_conversations(&ConversationFilter {
            inboxes: vec![inbox.id],
            statuses: vec![
                ConversationStatus::Open,
                ConversationStatus::Pending,
                ConversationStatus::Snoozed,
            ],
            assignee: None,
            label: None,
            waiting: false,
            after: None,
            limit: 100_000,
        })?;
        for c in page.conversations {
            let Some(clock) = clock_of(&inbox, &c) else {
                continue;
            };
            let breached = now >= clock.due_at;
            let recorded = c
                .sla_breaches
                .iter()
                .any(|b| b.target == clock.target && b.due_at == clock.due_at);
            let due = if breached {
                !recorded
            } else {
                now >= clock.warn_at && c.sla_warned != Some(clock.due_at)
            };
            if due {
                let inbox = inbox.clone();
                store
                    .sla_alert(c.id, clock, breached, now, move |fresh| {
                        clock_of(&inbox, fresh) == Some(clock)
                    })
                    .await?;
            }
        }
    }
    Ok(())
}
