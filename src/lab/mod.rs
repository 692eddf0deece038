//! Throwaway Debian hosts in systemd-nspawn containers, for tests and rehearsals.
