//! The SQLite schema, as the migrations that build it (`PRAGMA user_version` counts them).

/// Each entry moves the schema one version up. Never edit a released entry; append.
pub const MIGRATIONS: &[&str] = &[
    // 1: batches, samples, check states, incidents and their timeline.
    r#"
    CREATE TABLE batches (
        agent TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        samples INTEGER NOT NULL,
        PRIMARY KEY (agent, sequence)
    ) WITHOUT ROWID;
    CREATE TABLE samples (
        id INTEGER PRIMARY KEY,
        check_id TEXT NOT NULL,
        agent TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        success INTEGER NOT NULL,
        latency_s REAL,
        values_json TEXT,
        error TEXT
    );
    CREATE INDEX samples_by_check_time ON samples (check_id, ts_ms);
    CREATE TABLE check_state (
        check_id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        since_ms INTEGER NOT NULL,
        consecutive_failures INTEGER NOT NULL,
        consecutive_successes INTEGER NOT NULL,
        first_failure_ms INTEGER,
        last_sample_ms INTEGER,
        last_error TEXT,
        open_incident INTEGER
    ) WITHOUT ROWID;
    CREATE TABLE agents (
        name TEXT PRIMARY KEY,
        last_seen_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        dedup_key TEXT NOT NULL,
        check_id TEXT NOT NULL,
        title TEXT NOT NULL,
        severity TEXT NOT NULL,
        status TEXT NOT NULL,
        opened_ms INTEGER NOT NULL,
        resolved_ms INTEGER
    );
    CREATE UNIQUE INDEX one_open_incident_per_key ON incidents (dedup_key) WHERE status != 'resolved';
    CREATE TABLE incident_events (
        id INTEGER PRIMARY KEY,
        incident_id INTEGER NOT NULL REFERENCES incidents (id),
        at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX events_by_incident ON incident_events (incident_id, at_ms);
    "#,
    // 2: degraded results.
    r#"
    ALTER TABLE samples ADD COLUMN degraded INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE check_state ADD COLUMN degraded INTEGER NOT NULL DEFAULT 0;
    "#,
    // 3: incidents about other things than checks (silent agents, later SLOs).
    r#"
    ALTER TABLE incidents RENAME COLUMN check_id TO subject;
    ALTER TABLE incidents ADD COLUMN kind TEXT NOT NULL DEFAULT 'check_down';
    CREATE INDEX incidents_by_kind_status ON incidents (kind, status);
    "#,
    // 4: what SLOs are computed from: state periods and per-minute rollups per check.
    r#"
    CREATE TABLE check_periods (
        id INTEGER PRIMARY KEY,
        check_id TEXT NOT NULL,
        status TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER
    );
    CREATE INDEX periods_by_check ON check_periods (check_id, start_ms);
    CREATE TABLE rollups (
        check_id TEXT NOT NULL,
        minute_ms INTEGER NOT NULL,
        events INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        degraded INTEGER NOT NULL,
        latency BLOB,
        PRIMARY KEY (check_id, minute_ms)
    ) WITHOUT ROWID;
    "#,
    // 5: who acknowledged an incident, and when.
    r#"
    ALTER TABLE incidents ADD COLUMN acked_ms INTEGER;
    ALTER TABLE incidents ADD COLUMN acked_by TEXT;
    "#,
    // 6: ITIL priority and root-cause links.
    r#"
    ALTER TABLE incidents ADD COLUMN priority TEXT NOT NULL DEFAULT 'P3';
    ALTER TABLE incidents ADD COLUMN parent_id INTEGER REFERENCES incidents (id);
    "#,
    // 7: maintenance windows created through the API or CLI.
    r#"
    CREATE TABLE maintenance_windows (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER NOT NULL,
        services TEXT NOT NULL,
        change_id TEXT,
        exclude_from_sla INTEGER NOT NULL,
        created_by TEXT NOT NULL
    );
    "#,
    // 8: the notification outbox.
    r#"
    CREATE TABLE notifications (
        id INTEGER PRIMARY KEY,
        incident_id INTEGER NOT NULL REFERENCES incidents (id),
        receiver TEXT NOT NULL,
        event TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        done_ms INTEGER,
        last_error TEXT
    );
    CREATE INDEX notifications_due ON notifications (status, next_attempt_ms);
    CREATE INDEX notifications_by_incident ON notifications (incident_id);
    "#,
    // 9: silences.
    r#"
    CREATE TABLE silences (
        id INTEGER PRIMARY KEY,
        service TEXT,
        subject TEXT,
        kind TEXT,
        severity TEXT,
        starts_ms INTEGER NOT NULL,
        ends_ms INTEGER NOT NULL,
        author TEXT NOT NULL,
        comment TEXT NOT NULL
    );
    "#,
    // 10: the version each agent last reported.
    r#"
    ALTER TABLE agents ADD COLUMN version TEXT;
    "#,
    // 11: which agent the last result of a state came from (see `CheckState::observe_from`).
    r#"
    ALTER TABLE check_state ADD COLUMN last_agent TEXT;
    "#,
    // 12: who may report what. Local checks the agents announced; each agent's instance (one
    // run of its sequence numbers) and newest stored result; a batch is a duplicate only when
    // agent, instance, sequence and content agree (older rows: any content).
    r#"
    CREATE TABLE local_checks (
        check_id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        spec_json TEXT NOT NULL,
        announced_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    ALTER TABLE agents ADD COLUMN instance TEXT;
    ALTER TABLE agents ADD COLUMN instance_since_ms INTEGER;
    ALTER TABLE agents ADD COLUMN high_water_ms INTEGER;
    CREATE TABLE batches_by_instance (
        agent TEXT NOT NULL,
        instance TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        content_hash TEXT NOT NULL,
        received_ms INTEGER NOT NULL,
        samples INTEGER NOT NULL,
        PRIMARY KEY (agent, instance, sequence, content_hash)
    ) WITHOUT ROWID;
    INSERT INTO batches_by_instance SELECT agent, '', sequence, '', received_ms, samples FROM batches;
    DROP TABLE batches;
    ALTER TABLE batches_by_instance RENAME TO batches;
    "#,
    // 13: when the collector last received each check's result (staleness by its own clock);
    // when each maintenance window was made, and whether after its start on purpose; the
    // store's write probe; state periods that resume the same state after a silence (not a
    // state change, for flapping).
    r#"
    ALTER TABLE check_state ADD COLUMN last_received_ms INTEGER;
    ALTER TABLE maintenance_windows ADD COLUMN created_ms INTEGER;
    ALTER TABLE maintenance_windows ADD COLUMN retroactive INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE health (id INTEGER PRIMARY KEY CHECK (id = 1), probed_ms INTEGER NOT NULL);
    ALTER TABLE check_periods ADD COLUMN resumed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE incidents ADD COLUMN reopened_ms INTEGER;
    "#,
    // 14: samples waiting to be sent to each [[remote_write]] target, queued with their batch.
    r#"
    CREATE TABLE remote_write_queue (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        target TEXT NOT NULL,
        check_id TEXT NOT NULL,
        agent TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        success INTEGER NOT NULL,
        latency_s REAL,
        values_json TEXT
    );
    CREATE INDEX remote_write_queue_by_target ON remote_write_queue (target, id);
    "#,
    // 15: what customers are told: status page posts and their updates, subscribers, and the
    // outbox of messages to them (one per subscriber and item).
    r#"
    CREATE TABLE status_posts (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        impact TEXT NOT NULL,
        services_json TEXT NOT NULL,
        incident_id INTEGER,
        status TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        resolved_ms INTEGER,
        postmortem TEXT
    );
    CREATE TABLE status_updates (
        id INTEGER PRIMARY KEY,
        post_id INTEGER NOT NULL REFERENCES status_posts (id),
        status TEXT NOT NULL,
        message TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        author TEXT NOT NULL
    );
    CREATE INDEX status_updates_by_post ON status_updates (post_id, id);
    CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        address TEXT NOT NULL,
        services_json TEXT NOT NULL,
        token TEXT NOT NULL UNIQUE,
        created_ms INTEGER NOT NULL,
        confirmed_ms INTEGER,
        unsubscribed_ms INTEGER,
        failed_ms INTEGER,
        UNIQUE (kind, address)
    );
    CREATE TABLE subscriber_messages (
        id INTEGER PRIMARY KEY,
        subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
        item TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        done_ms INTEGER,
        last_error TEXT,
        -- What to send when it was made at queue time (a scheduled report), else NULL.
        payload TEXT,
        UNIQUE (subscriber_id, item)
    );
    CREATE INDEX subscriber_messages_due ON subscriber_messages (status, next_attempt_ms);
    CREATE INDEX subscriber_messages_by_item ON subscriber_messages (item);
    "#,
];
