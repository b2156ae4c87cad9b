"""The local cloud: embedded Postgres, moto in server mode, and the thin glue that makes them act like AWS."""
