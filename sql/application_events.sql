-- Application events and sign-ins (API section 10), in the same trail as
-- captured changes (src/application_events.rs).

CREATE FUNCTION audit_log.log_event(action text,
                                    entity text DEFAULT NULL,
                                    entity_id jsonb DEFAULT NULL,
                                    details jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'audit_log_log_event';

-- The LOGIN event of this connection. Granted to no one: only on_login()
-- below, as the extension's owner, calls it.
CREATE FUNCTION audit_log.record_login()
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'audit_log_record_login';

-- The login event trigger's function (PostgreSQL 17 and later). It must never
-- stop a login: whatever goes wrong (a standby, a read-only session, a lock
-- held too long, a full disk), the connection goes on with a WARNING instead
-- of an event. PL/pgSQL reads the setting, so that the extension's library is
-- loaded into a new connection only when logins are tracked.
CREATE FUNCTION audit_log.on_login()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '200ms'
SET statement_timeout = '2s'
AS $$
BEGIN
    IF lower(coalesce(current_setting('audit_log.track_logins', true), 'off'))
           NOT IN ('on', 'true', 'yes', '1', 't', 'y') THEN
        RETURN;
    END IF;
    IF pg_is_in_recovery() THEN
        RAISE WARNING 'audit_log: the login of % is not recorded: this server is a standby', session_user;
        RETURN;
    END IF;
    BEGIN
        PERFORM audit_log.record_login();
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'audit_log: the login of % is not recorded: %', session_user, SQLERRM
            USING DETAIL = 'The connection goes on; the trail misses this sign-in.';
    END;
END
$$;

-- Login event triggers exist from PostgreSQL 17 on.
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 170000 THEN
        EXECUTE 'CREATE EVENT TRIGGER audit_log_logins ON login EXECUTE FUNCTION audit_log.on_login()';
    END IF;
END
$$;
