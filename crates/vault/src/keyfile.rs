//! The embedded key store: a directory of 32-byte key files, apart from the database.

use crate::xchacha::{self, NONCE_LEN};
use crate::{KeyEncryptionKey, Random, Secret32, VaultError};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A directory (mode 0700) of key files (mode 0600), each created at first use.
#[derive(Debug, Clone)]
pub struct KeyDir {
    dir: PathBuf,
}

impl KeyDir {
    pub fn open(dir: &Path) -> Result<KeyDir, VaultError> {
        let io = |what: &str, e: std::io::Error| {
            VaultError::KeyStore(format!("{what} {}: {e}", dir.display()))
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io("cannot create", e))?;
        let mode = fs::metadata(dir)
            .map_err(|e| io("cannot read", e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(VaultError::KeyStore(format!(
                "key directory {} is readable by others (mode {:o}); run chmod 700 on it",
                dir.display(),
                mode & 0o777
            )));
        }
        Ok(KeyDir {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The key stored under `name`, created from `random` if it does not exist yet.
    pub fn secret(&self, name: &str, random: &dyn Random) -> Result<Secret32, VaultError> {
        let path = self.dir.join(format!("{name}.key"));
        let io = |what: &str, e: std::io::Error| {
            VaultError::KeyStore(format!("{what} {}: {e}", path.display()))
        };
        match fs::OpenOptions::new().read(true).open(&path) {
            Ok(mut f) => {
                let mode = f
                    .metadata()
                    .map_err(|e| io("cannot read", e))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    return Err(VaultError::KeyStore(format!(
                        "key file {} is readable by others (mode {:o}); run chmod 600 on it",
                        path.display(),
                        mode & 0o777
                    )));
                }
                let mut bytes = [0u8; 32];
                f.read_exact(&mut bytes).map_err(|e| io("cannot read", e))?;
                let secret = Secret32::from_bytes(bytes);
                zeroize::Zeroize::zeroize(&mut bytes);
                Ok(secret)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = Secret32::generate(random)?;
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| io("cannot create", e))?;
                f.write_all(secret.expose())
                    .map_err(|e| io("cannot write", e))?;
                f.sync_all().map_err(|e| io("cannot sync", e))?;
                Ok(secret)
            }
            Err(e) => Err(io("cannot open", e)),
        }
    }
}

/// The key-encryption key kept in a [`KeyDir`] (`kek.key`), with the index root (`index.key`).
pub struct KeyFileKek {
    kek: Secret32,
    index_root: Secret32,
    random: Arc<dyn Random>,
}

impl KeyFileKek {
    pub fn open(dir: &KeyDir, random: Arc<dyn Random>) -> Result<KeyFileKek, VaultError> {
        let kek = dir.secret("kek", random.as_ref())?;
        let index_root = dir.secret("index", random.as_ref())?;
        Ok(KeyFileKek {
            kek,
            index_root,
            random,
        })
    }
}

fn wrap_aad(key_id: u32) -> Vec<u8> {
    let mut aad = b"daman.dek.v1\0".to_vec();
    aad.extend_from_slice(&key_id.to_be_bytes());
    aad
}

impl KeyEncryptionKey for KeyFileKek {
    fn wrap(&self, key_id: u32, dek: &Secret32) -> Result<Vec<u8>, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce)?;
        let aad = wrap_aad(key_id);
        let mut out = nonce.to_vec();
        out.extend_from_slice(dek.expose());
        match xchacha::seal_in_place(self.kek.expose(), &nonce, &aad, &mut out[NONCE_LEN..]) {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                Ok(out)
            }
            Err(e) => {
                zeroize::Zeroize::zeroize(&mut out);
                Err(e)
            }
        }
    }

    fn unwrap(&self, key_id: u32, wrapped: &[u8]) -> Result<Secret32, VaultError> {
        let (nonce, ct) = wrapped
            .split_at_checked(NONCE_LEN)
            .ok_or(VaultError::Format)?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| VaultError::Format)?;
        let aad = wrap_aad(key_id);
        let mut plain = xchacha::open(self.kek.expose(), &nonce, &aad, ct)?;
        if plain.len() != 32 {
            zeroize::Zeroize::zeroize(&mut plain);
            return Err(VaultError::Format);
        }
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&plain);
        zeroize::Zeroize::zeroize(&mut plain);
        let secret = Secret32::from_bytes(bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        Ok(secret)
    }

    fn index_root(&self) -> Result<Secret32, VaultError> {
        Ok(self.index_root.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OsRandom;

    #[test]
    fn key_files_are_created_private_and_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = KeyDir::open(&tmp.path().join("keys")).unwrap();
        let a = dir.secret("kek", &OsRandom).unwrap();
        let b = dir.secret("kek", &OsRandom).unwrap();
        assert_eq!(a.expose(), b.expose());
        let meta = fs::metadata(tmp.path().join("keys/kek.key")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(tmp.path().join("keys"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }

    #[test]
    fn refuses_a_key_file_others_can_read() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = KeyDir::open(&tmp.path().join("keys")).unwrap();
        dir.secret("kek", &OsRandom).unwrap();
        fs::set_permissions(
            tmp.path().join("keys/kek.key"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(
            matches!(dir.secret("kek", &OsRandom), Err(VaultError::KeyStore(m)) if m.contains("chmod 600"))
        );
    }

    #[test]
    fn wrapped_key_is_bound_to_its_id() {
        let tmp = tempfile::tempdir().unwrap();
        let kek = KeyFileKek::open(
            &KeyDir::open(&tmp.path().join("keys")).unwrap(),
            Arc::new(OsRandom),
        )
        .unwrap();
        let dek = Secret32::generate(&OsRandom).unwrap();
        let wrapped = kek.wrap(7, &dek).unwrap();
        assert_eq!(kek.unwrap(7, &wrapped).unwrap().expose(), dek.expose());
        assert_eq!(kek.unwrap(8, &wrapped).unwrap_err(), VaultError::Decrypt);
    }
}
