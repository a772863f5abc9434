-- 0003_tenants_and_api_keys.sql: who may call Herald (docs/security.md).
--
-- Every row of 0001 and 0002 already carries tenant_id; this adds the
-- tenants themselves, with the topic prefix that confines their MQTT
-- topics, and the API keys that callers authenticate with.
--
-- Conventions as in 0001_initial.sql.

-- A tenant and its topic space. topic_prefix is one topic level ("acme":
-- the tenant's topics are acme/...); '' is the whole topic space, which only
-- the operator's tenant 'default' has. Unique, so no two tenants share a
-- topic space.
CREATE TABLE tenants (
  tenant_id    text        PRIMARY KEY CHECK (tenant_id <> ''),
  topic_prefix text        NOT NULL UNIQUE CHECK (topic_prefix NOT LIKE '%/%'),
  create_time  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO tenants (tenant_id, topic_prefix) VALUES ('default', '');

-- An API key: "hk_<key_id>_<secret>" as callers send it. Only the SHA-256
-- of the secret is kept; the secret is shown once, by `herald keys create`.
-- Revoked keys stay, so that logs naming a key id can still be traced.
CREATE TABLE api_keys (
  key_id        text        PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{12}$'),
  tenant_id     text        NOT NULL REFERENCES tenants (tenant_id),
  name          text        NOT NULL DEFAULT '',
  scopes        text[]      NOT NULL,   -- notify, command, devices:write, devices:read, stats
  secret_sha256 bytea       NOT NULL CHECK (length(secret_sha256) = 32),
  create_time   timestamptz NOT NULL DEFAULT now(),
  revoke_time   timestamptz            -- NULL = valid
);

CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, create_time);
