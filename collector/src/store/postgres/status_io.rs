//! Status page posts, subscribers and their outbox in PostgreSQL (the same as SQLite's).

use postgres::{Client, Row, Transaction};

use crate::core::status_post::{Impact, PostStatus, PostUpdate, StatusPost, Subscriber};
use crate::store::{NotificationOutcome, StoreError, SubscriberChange, SubscriberMessage, SubscriberMessageRow};

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn list_json(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

fn queue(
    tx: &mut Transaction<'_>,
    recipients: &[i64],
    item: &str,
    payload: Option<&str>,
    at_ms: i64,
) -> Result<usize, StoreError> {
    if recipients.is_empty() {
        return Ok(0);
    }
    let n = tx.execute(
        "INSERT INTO subscriber_messages (subscriber_id, item, status, next_attempt_ms, created_ms, payload)
         SELECT id, $2, 'pending', $3, $3, $4 FROM unnest($1::bigint[]) AS id
         ON CONFLICT (subscriber_id, item) DO NOTHING",
        &[&recipients, &item, &at_ms, &payload],
    )?;
    Ok(usize::try_from(n).unwrap_or(0))
}

fn insert_update(tx: &mut Transaction<'_>, post_id: i64, u: &PostUpdate) -> Result<i64, StoreError> {
    let row = tx.query_one(
        "INSERT INTO status_updates (post_id, status, message, at_ms, author) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        &[&post_id, &u.status.as_str(), &u.message, &u.at_ms, &u.by],
    )?;
    Ok(row.try_get(0)?)
}

pub fn add_post(client: &mut Client, post: &StatusPost, recipients: &[i64]) -> Result<i64, StoreError> {
    let mut tx = client.transaction()?;
    let row = tx.query_one(
        "INSERT INTO status_posts (title, impact, services_json, incident_id, status, created_ms, resolved_ms, postmortem)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        &[
            &post.title,
            &post.impact.as_str(),
            &json_list(&post.services),
            &post.incident_id,
            &post.status.as_str(),
            &post.created_ms,
            &post.resolved_ms,
            &post.postmortem,
        ],
    )?;
    let id: i64 = row.try_get(0)?;
    for u in &post.updates {
        let update_id = insert_update(&mut tx, id, u)?;
        queue(&mut tx, recipients, &format!("update:{id}:{update_id}"), None, u.at_ms)?;
    }
    tx.commit()?;
    Ok(id)
}

pub fn add_post_update(
    client: &mut Client,
    post_id: i64,
    u: &PostUpdate,
    recipients: &[i64],
) -> Result<Option<i64>, StoreError> {
    let mut tx = client.transaction()?;
    let resolved = (u.status == PostStatus::Resolved).then_some(u.at_ms);
    let changed = tx.execute(
        "UPDATE status_posts SET status = $2,
                resolved_ms = CASE WHEN $3::bigint IS NULL THEN NULL ELSE COALESCE(resolved_ms, $3::bigint) END
         WHERE id = $1",
        &[&post_id, &u.status.as_str(), &resolved],
    )?;
    if changed == 0 {
        return Ok(None);
    }
    let update_id = insert_update(&mut tx, post_id, u)?;
    queue(&mut tx, recipients, &format!("update:{post_id}:{update_id}"), None, u.at_ms)?;
    tx.commit()?;
    Ok(Some(update_id))
}

pub fn set_postmortem(client: &mut Client, post_id: i64, text: &str) -> Result<bool, StoreError> {
    Ok(client.execute("UPDATE status_posts SET postmortem = $2 WHERE id = $1", &[&post_id, &text])? > 0)
}

fn post_row(r: &Row) -> Result<StatusPost, StoreError> {
    let impact: String = r.try_get(2)?;
    let status: String = r.try_get(5)?;
    Ok(StatusPost {
        id: r.try_get(0)?,
        title: r.try_get(1)?,
        impact: Impact::parse(&impact).unwrap_or(Impact::Degraded),
        services: list_json(&r.try_get::<_, String>(3)?),
        incident_id: r.try_get(4)?,
        status: PostStatus::parse(&status).unwrap_or(PostStatus::Investigating),
        created_ms: r.try_get(6)?,
        resolved_ms: r.try_get(7)?,
        postmortem: r.try_get(8)?,
        updates: Vec::new(),
    })
}

/// The posts with these rows, each with its updates (one query for all of them).
fn with_updates(client: &mut Client, rows: Vec<Row>) -> Result<Vec<StatusPost>, StoreError> {
    let mut posts = rows.iter().map(post_row).collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<i64> = posts.iter().map(|p| p.id).collect();
    let updates = client.query(
        "SELECT post_id, id, status, message, at_ms, author FROM status_updates
         WHERE post_id = ANY($1::bigint[]) ORDER BY at_ms, id",
        &[&ids],
    )?;
    for r in updates {
        let post_id: i64 = r.try_get(0)?;
        let status: String = r.try_get(2)?;
        let u = PostUpdate {
            id: r.try_get(1)?,
            status: PostStatus::parse(&status).unwrap_or(PostStatus::Investigating),
            message: r.try_get(3)?,
            at_ms: r.try_get(4)?,
            by: r.try_get(5)?,
        };
        if let Some(p) = posts.iter_mut().find(|p| p.id == post_id) {
            p.updates.push(u);
        }
    }
    Ok(posts)
}

const POST_COLUMNS: &str =
    "id, title, impact, services_json, incident_id, status, created_ms, resolved_ms, postmortem FROM status_posts";

pub fn posts(client: &mut Client, between: Option<(i64, i64)>, limit: usize) -> Result<Vec<StatusPost>, StoreError> {
    let (from, to) = between.unwrap_or((i64::MIN, i64::MAX));
    let rows = client.query(
        &format!(
            "SELECT {POST_COLUMNS} WHERE created_ms < $2 AND (resolved_ms IS NULL OR resolved_ms >= $1)
             ORDER BY created_ms DESC, id DESC LIMIT $3"
        ),
        &[&from, &to, &(limit as i64)],
    )?;
    with_updates(client, rows)
}

pub fn post(client: &mut Client, id: i64) -> Result<Option<StatusPost>, StoreError> {
    let rows = client.query(&format!("SELECT {POST_COLUMNS} WHERE id = $1"), &[&id])?;
    Ok(with_updates(client, rows)?.pop())
}

const SUBSCRIBER_COLUMNS: &str =
    "id, kind, address, services_json, token, created_ms, confirmed_ms, unsubscribed_ms, failed_ms FROM subscribers";

fn subscriber_row(r: &Row) -> Result<Subscriber, StoreError> {
    Ok(Subscriber {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        address: r.try_get(2)?,
        services: list_json(&r.try_get::<_, String>(3)?),
        token: r.try_get(4)?,
        created_ms: r.try_get(5)?,
        confirmed_ms: r.try_get(6)?,
        unsubscribed_ms: r.try_get(7)?,
        failed_ms: r.try_get(8)?,
    })
}

pub fn add_subscriber(client: &mut Client, s: &Subscriber) -> Result<(i64, bool), StoreError> {
    // Two collectors taking the same address at once: one inserts, the other finds it.
    let inserted = client.query_opt(
        "INSERT INTO subscribers (kind, address, services_json, token, created_ms, confirmed_ms)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kind, address) DO NOTHING RETURNING id",
        &[&s.kind, &s.address, &json_list(&s.services), &s.token, &s.created_ms, &s.confirmed_ms],
    )?;
    match inserted {
        Some(r) => Ok((r.try_get(0)?, true)),
        None => Ok((
            client
                .query_one("SELECT id FROM subscribers WHERE kind = $1 AND address = $2", &[&s.kind, &s.address])?
                .try_get(0)?,
            false,
        )),
    }
}

pub fn subscriber(client: &mut Client, id: i64) -> Result<Option<Subscriber>, StoreError> {
    client
        .query_opt(&format!("SELECT {SUBSCRIBER_COLUMNS} WHERE id = $1"), &[&id])?
        .as_ref()
        .map(subscriber_row)
        .transpose()
}

pub fn subscriber_by_token(client: &mut Client, token: &str) -> Result<Option<Subscriber>, StoreError> {
    client
        .query_opt(&format!("SELECT {SUBSCRIBER_COLUMNS} WHERE token = $1"), &[&token])?
        .as_ref()
        .map(subscriber_row)
        .transpose()
}

pub fn update_subscriber(client: &mut Client, id: i64, change: SubscriberChange, at_ms: i64) -> Result<(), StoreError> {
    let sql = match change {
        SubscriberChange::Confirmed => {
            "UPDATE subscribers SET confirmed_ms = COALESCE(confirmed_ms, $2), unsubscribed_ms = NULL WHERE id = $1"
        }
        SubscriberChange::Unsubscribed => {
            "UPDATE subscribers SET unsubscribed_ms = COALESCE(unsubscribed_ms, $2) WHERE id = $1"
        }
        SubscriberChange::Failed => "UPDATE subscribers SET failed_ms = $2 WHERE id = $1",
    };
    let mut tx = client.transaction()?;
    tx.execute(sql, &[&id, &at_ms])?;
    if change == SubscriberChange::Unsubscribed {
        // Nothing more leaves for it, not even what was already queued.
        tx.execute(
            "UPDATE subscriber_messages SET status = 'suppressed', done_ms = $2, last_error = 'unsubscribed'
             WHERE subscriber_id = $1 AND status = 'pending'",
            &[&id, &at_ms],
        )?;
    }
    tx.commit()?;
    Ok(())
}

pub fn subscribers(client: &mut Client) -> Result<Vec<Subscriber>, StoreError> {
    client.query(&format!("SELECT {SUBSCRIBER_COLUMNS} ORDER BY id"), &[])?.iter().map(subscriber_row).collect()
}

pub fn enqueue(
    client: &mut Client,
    recipients: &[i64],
    item: &str,
    payload: Option<&str>,
    at_ms: i64,
) -> Result<usize, StoreError> {
    let mut tx = client.transaction()?;
    let n = queue(&mut tx, recipients, item, payload, at_ms)?;
    tx.commit()?;
    Ok(n)
}

pub fn item_exists(client: &mut Client, item: &str) -> Result<bool, StoreError> {
    Ok(client.query_opt("SELECT 1 FROM subscriber_messages WHERE item = $1 LIMIT 1", &[&item])?.is_some())
}

pub fn due(client: &mut Client, now_ms: i64, limit: usize) -> Result<Vec<SubscriberMessage>, StoreError> {
    client
        .query(
            "SELECT id, subscriber_id, item, attempts, created_ms, payload FROM subscriber_messages
             WHERE status = 'pending' AND next_attempt_ms <= $1 ORDER BY next_attempt_ms, id LIMIT $2",
            &[&now_ms, &(limit as i64)],
        )?
        .iter()
        .map(|r| {
            Ok(SubscriberMessage {
                id: r.try_get(0)?,
                subscriber_id: r.try_get(1)?,
                item: r.try_get(2)?,
                attempts: u32::try_from(r.try_get::<_, i64>(3)?).unwrap_or(u32::MAX),
                created_ms: r.try_get(4)?,
                payload: r.try_get(5)?,
            })
        })
        .collect()
}

pub fn record(client: &mut Client, id: i64, outcome: &NotificationOutcome, at_ms: i64) -> Result<(), StoreError> {
    match outcome {
        NotificationOutcome::Delivered | NotificationOutcome::DeliveredAs(_) => client.execute(
            "UPDATE subscriber_messages SET status = 'delivered', attempts = attempts + 1, done_ms = $2, last_error = NULL WHERE id = $1",
            &[&id, &at_ms],
        )?,
        NotificationOutcome::Suppressed(why) => client.execute(
            "UPDATE subscriber_messages SET status = 'suppressed', done_ms = $2, last_error = $3 WHERE id = $1",
            &[&id, &at_ms, why],
        )?,
        NotificationOutcome::Retry { next_attempt_ms, error } => client.execute(
            "UPDATE subscriber_messages SET attempts = attempts + 1, next_attempt_ms = $2, last_error = $3 WHERE id = $1",
            &[&id, next_attempt_ms, error],
        )?,
        NotificationOutcome::Failed(error) => client.execute(
            "UPDATE subscriber_messages SET status = 'failed', attempts = attempts + 1, done_ms = $2, last_error = $3 WHERE id = $1",
            &[&id, &at_ms, error],
        )?,
    };
    Ok(())
}

pub fn rows(client: &mut Client, limit: usize) -> Result<Vec<SubscriberMessageRow>, StoreError> {
    client
        .query(
            "SELECT id, subscriber_id, item, status, attempts, created_ms, done_ms, last_error FROM subscriber_messages
             ORDER BY id DESC LIMIT $1",
            &[&(limit as i64)],
        )?
        .iter()
        .map(|r| {
            Ok(SubscriberMessageRow {
                id: r.try_get(0)?,
                subscriber_id: r.try_get(1)?,
                item: r.try_get(2)?,
                status: r.try_get(3)?,
                attempts: u32::try_from(r.try_get::<_, i64>(4)?).unwrap_or(u32::MAX),
                created_ms: r.try_get(5)?,
                done_ms: r.try_get(6)?,
                last_error: r.try_get(7)?,
            })
        })
        .collect()
}
