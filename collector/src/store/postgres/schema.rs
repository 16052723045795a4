//! The PostgreSQL schema, as the migrations that build it (`vakt_schema.version` counts them).
//! The same tables as SQLite's, in PostgreSQL's types: times are Unix milliseconds (`bigint`),
//! flags `boolean`, histograms `bytea`.

pub const MIGRATIONS: &[&str] = &[
    // 1: everything SQLite's schema 13 holds.
    r#"
    CREATE TABLE samples (
        id bigserial PRIMARY KEY,
        check_id text NOT NULL,
        agent text NOT NULL,
        ts_ms bigint NOT NULL,
        success boolean NOT NULL,
        latency_s double precision,
        values_json text,
        error text,
        degraded boolean NOT NULL DEFAULT false
    );
    CREATE INDEX samples_by_check_time ON samples (check_id, ts_ms);
    CREATE INDEX samples_by_time ON samples (ts_ms);
    CREATE TABLE check_state (
        check_id text PRIMARY KEY,
        status text NOT NULL,
        since_ms bigint NOT NULL,
        consecutive_failures bigint NOT NULL,
        consecutive_successes bigint NOT NULL,
        first_failure_ms bigint,
        last_sample_ms bigint,
        last_error text,
        open_incident bigint,
        degraded boolean NOT NULL DEFAULT false,
        last_agent text,
        last_received_ms bigint
    );
    CREATE TABLE agents (
        name text PRIMARY KEY,
        last_seen_ms bigint NOT NULL,
        version text,
        instance text,
        instance_since_ms bigint,
        high_water_ms bigint
    );
    CREATE TABLE incidents (
        id bigserial PRIMARY KEY,
        dedup_key text NOT NULL,
        subject text NOT NULL,
        title text NOT NULL,
        severity text NOT NULL,
        status text NOT NULL,
        opened_ms bigint NOT NULL,
        resolved_ms bigint,
        kind text NOT NULL DEFAULT 'check_down',
        acked_ms bigint,
        acked_by text,
        priority text NOT NULL DEFAULT 'P3',
        parent_id bigint REFERENCES incidents (id),
        reopened_ms bigint
    );
    CREATE UNIQUE INDEX one_open_incident_per_key ON incidents (dedup_key) WHERE status != 'resolved';
    CREATE INDEX incidents_by_kind_status ON incidents (kind, status);
    CREATE INDEX incidents_by_subject ON incidents (kind, subject);
    CREATE TABLE incident_events (
        id bigserial PRIMARY KEY,
        incident_id bigint NOT NULL REFERENCES incidents (id),
        at_ms bigint NOT NULL,
        kind text NOT NULL,
        message text NOT NULL
    );
    CREATE INDEX events_by_incident ON incident_events (incident_id, at_ms);
    CREATE TABLE check_periods (
        id bigserial PRIMARY KEY,
        check_id text NOT NULL,
        status text NOT NULL,
        start_ms bigint NOT NULL,
        end_ms bigint,
        resumed boolean NOT NULL DEFAULT false
    );
    CREATE INDEX periods_by_check ON check_periods (check_id, start_ms);
    CREATE TABLE rollups (
        check_id text NOT NULL,
        minute_ms bigint NOT NULL,
        events bigint NOT NULL,
        failed bigint NOT NULL,
        degraded bigint NOT NULL,
        latency bytea,
        PRIMARY KEY (check_id, minute_ms)
    );
    CREATE TABLE maintenance_windows (
        id bigserial PRIMARY KEY,
        name text NOT NULL,
        start_ms bigint NOT NULL,
        end_ms bigint NOT NULL,
        services text NOT NULL,
        change_id text,
        exclude_from_sla boolean NOT NULL,
        created_by text NOT NULL,
        created_ms bigint,
        retroactive boolean NOT NULL DEFAULT false
    );
    CREATE TABLE notifications (
        id bigserial PRIMARY KEY,
        incident_id bigint NOT NULL REFERENCES incidents (id),
        receiver text NOT NULL,
        event text NOT NULL,
        status text NOT NULL,
        attempts bigint NOT NULL DEFAULT 0,
        next_attempt_ms bigint NOT NULL,
        created_ms bigint NOT NULL,
        done_ms bigint,
        last_error text
    );
    CREATE INDEX notifications_due ON notifications (status, next_attempt_ms);
    CREATE INDEX notifications_by_incident ON notifications (incident_id);
    CREATE TABLE silences (
        id bigserial PRIMARY KEY,
        service text,
        subject text,
        kind text,
        severity text,
        starts_ms bigint NOT NULL,
        ends_ms bigint NOT NULL,
        author text NOT NULL,
        comment text NOT NULL
    );
    CREATE TABLE local_checks (
        check_id text PRIMARY KEY,
        agent text NOT NULL,
        spec_json text NOT NULL,
        announced_ms bigint NOT NULL
    );
    CREATE TABLE batches (
        agent text NOT NULL,
        instance text NOT NULL,
        sequence bigint NOT NULL,
        content_hash text NOT NULL,
        received_ms bigint NOT NULL,
        samples bigint NOT NULL,
        PRIMARY KEY (agent, instance, sequence, content_hash)
    );
    CREATE TABLE health (id integer PRIMARY KEY CHECK (id = 1), probed_ms bigint NOT NULL);
    "#,
    // 2: several collectors on one database: the leader's lease and the nodes' heartbeats.
    r#"
    CREATE TABLE vakt_leader (
        id integer PRIMARY KEY CHECK (id = 1),
        holder text NOT NULL,
        node text NOT NULL,
        epoch bigint NOT NULL,
        lease_until timestamptz NOT NULL
    );
    CREATE TABLE vakt_nodes (
        node text PRIMARY KEY,
        holder text NOT NULL,
        version text NOT NULL,
        config_hash text NOT NULL,
        started_ms bigint NOT NULL,
        seen_ms bigint NOT NULL,
        clock_offset_ms bigint NOT NULL
    );
    "#,
    // 3: samples waiting to be sent to each [[remote_write]] target, queued with their batch.
    r#"
    CREATE TABLE remote_write_queue (
        id bigserial PRIMARY KEY,
        target text NOT NULL,
        check_id text NOT NULL,
        agent text NOT NULL,
        ts_ms bigint NOT NULL,
        success boolean NOT NULL,
        latency_s double precision,
        values_json text
    );
    CREATE INDEX remote_write_queue_by_target ON remote_write_queue (target, id);
    "#,
    // 4: whether the leader holds the leadership's session lock (a leader whose session ends,
    // as when its process dies, is replaced at once rather than when its lease runs out).
    r#"
    ALTER TABLE vakt_leader ADD COLUMN locked boolean NOT NULL DEFAULT false;
    "#,
    // 5: what customers are told: status page posts and their updates, subscribers, and the
    // outbox of messages to them (one per subscriber and item).
    r#"
    CREATE TABLE status_posts (
        id bigserial PRIMARY KEY,
        title text NOT NULL,
        impact text NOT NULL,
        services_json text NOT NULL,
        incident_id bigint,
        status text NOT NULL,
        created_ms bigint NOT NULL,
        resolved_ms bigint,
        postmortem text
    );
    CREATE TABLE status_updates (
        id bigserial PRIMARY KEY,
        post_id bigint NOT NULL REFERENCES status_posts (id),
        status text NOT NULL,
        message text NOT NULL,
        at_ms bigint NOT NULL,
        author text NOT NULL
    );
    CREATE INDEX status_updates_by_post ON status_updates (post_id, id);
    CREATE TABLE subscribers (
        id bigserial PRIMARY KEY,
        kind text NOT NULL,
        address text NOT NULL,
        services_json text NOT NULL,
        token text NOT NULL UNIQUE,
        created_ms bigint NOT NULL,
        confirmed_ms bigint,
        unsubscribed_ms bigint,
        failed_ms bigint,
        UNIQUE (kind, address)
    );
    CREATE TABLE subscriber_messages (
        id bigserial PRIMARY KEY,
        subscriber_id bigint NOT NULL REFERENCES subscribers (id),
        item text NOT NULL,
        status text NOT NULL,
        attempts bigint NOT NULL DEFAULT 0,
        next_attempt_ms bigint NOT NULL,
        created_ms bigint NOT NULL,
        done_ms bigint,
        last_error text,
        -- What to send when it was made at queue time (a scheduled report), else NULL.
        payload text,
        UNIQUE (subscriber_id, item)
    );
    CREATE INDEX subscriber_messages_due ON subscriber_messages (status, next_attempt_ms);
    CREATE INDEX subscriber_messages_by_item ON subscriber_messages (item);
    "#,
];
