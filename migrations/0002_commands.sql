-- 0002_commands.sql: commands sent with CommandService.SendCommand and
-- their outcomes (PRODUCT.md section 1, "Commands").
--
-- A command row is written by the replica whose caller waits for the
-- device (insert, attempts, completion). With an MQTT 5 shared
-- subscription the device's response may reach another replica; that one
-- records the response in the row (only while it is pending) and sends
-- NOTIFY herald_command_responses with the request id, on which the
-- waiting replica LISTENs (see service/store/pg_command_store.cc).
--
-- Conventions as in 0001_initial.sql: tenant_id on every row, times from
-- the database clock unless a replica measured them, enumerations as
-- lower-case text (CommandStateName in service/core/command.cc).

CREATE TABLE commands (
  command_id        text        PRIMARY KEY CHECK (command_id <> ''),
  tenant_id         text        NOT NULL,
  -- On the wire (payload "request_id", MQTT 5 correlation data); the same
  -- for every attempt, so a late answer to an earlier attempt still counts.
  request_id        text        NOT NULL UNIQUE CHECK (request_id <> ''),
  device_id         text        NOT NULL,
  action            text        NOT NULL,
  params            jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
  qos               smallint    NOT NULL CHECK (qos BETWEEN 0 AND 2),
  topic             text        NOT NULL,            -- the command topic
  response_topic    text        NOT NULL DEFAULT '', -- the MQTT 5 response topic property
  state             text        NOT NULL DEFAULT 'pending' CHECK (state IN (
                      'pending', 'succeeded', 'error', 'timed_out')),
  attempts          integer     NOT NULL DEFAULT 0,  -- publishes so far
  max_attempts      integer     NOT NULL CHECK (max_attempts >= 1),
  attempt_timeout   interval    NOT NULL,
  status            text,                            -- the device's status
  result            jsonb,                           -- the device's result (any JSON value)
  error             text,                            -- the device's error, or why Herald gave up
  round_trip        interval,                        -- first publish -> response
  create_time       timestamptz NOT NULL DEFAULT now(),
  first_sent_time   timestamptz,
  last_attempt_time timestamptz,
  response_time     timestamptz,
  complete_time     timestamptz,
  -- The waiting caller gives up by then at the latest; a row still pending
  -- well after it was abandoned by a replica that stopped.
  expire_time       timestamptz NOT NULL
);

-- The request_id UNIQUE constraint is the index that response hand-over
-- (UPDATE ... WHERE request_id = $1) uses. This one serves a device's
-- command history, newest first.
CREATE INDEX commands_device_idx ON commands (tenant_id, device_id, create_time DESC);
