package audit

// verifyText is VERIFY.txt, in every package.
const verifyText = `How to verify this evidence package
===================================

Run, with nothing but this zip and changegate (no server, no network):

    changegate audit verify PACKAGE.zip --pubkey changegate.pub

--pubkey is the ledger's public key as you hold it (from "changegate audit
pubkey", published by the company before the audit), or its fingerprint
(SHA256:...). Without it, verify trusts pubkey.pem inside the package: then
compare the fingerprint it prints with one you obtained separately.

verify exits non-zero and names the file at fault when any check fails.

What each check proves
----------------------
1. manifest.json.dsse is a valid ed25519 DSSE signature, by the ledger key,
   over exactly the bytes of manifest.json. manifest.json lists the SHA-256
   of every other file, so a file edited, removed or added is named.
2. checkpoint.note is a C2SP checkpoint signed by the ledger key: the log's
   size and Merkle root (RFC 6962) at the moment of the export.
3. leaves.bin holds the leaf hash of every record of the log up to the
   checkpoint, 32 bytes each, in order. Rebuilding the Merkle root from
   them gives the checkpoint's root: no record of the log was left out,
   added or changed.
4. population.manifest.json.dsse signs population.manifest.json, which
   states the query, the row count, the counts by change type and the
   SHA-256 of population.csv. Each row of population.csv carries its
   record's sequence number and leaf hash, and each is the leaf at that
   position of the log: every row is a record of the signed log.
5. For each sampled record (records/SEQ-ID/): envelope.dsse.json is the
   record exactly as signed, with a valid signature by the ledger key; its
   leaf hash is the leaf at its sequence number; inclusion-proof.json
   proves it is in the tree of the checkpoint; it is a row of the
   population, and the row's columns are what the record says.
6. For a sample: the selection is recomputed. Every population record is
   ranked by HMAC-SHA256(key, record id), ascending, and the first SIZE are
   the sample. The key is the UTF-8 bytes of the seed, or, with an auditor
   nonce, SHA-256(checkpoint root || nonce). With include_exceptions, every
   population row with an exception is added, marked "exception".

The auditor nonce, step by step
-------------------------------
1. Pull the population; keep its manifest, which holds the checkpoint
   (size and root). The log has fixed that root.
2. Only then pick a nonce, and ask for the sample with --auditor-nonce
   NONCE --checkpoint SIZE. Neither the company (which cannot change the
   root) nor the auditor (who picked the nonce after the root was fixed,
   and cannot predict HMAC) could steer which records are drawn.

What this package cannot prove offline
--------------------------------------
- That a record outside the population really lies outside the period:
  the leaves prove such a record exists, not its event time. Ask for it
  with "changegate audit export --id ID" or GET /api/v1/changes/ID and
  verify that package.
- That the ledger key was not misused by whoever held it at the time the
  records were written; only that nothing changed since they were signed.
  Keeping each checkpoint you receive, and checking that a later one is
  consistent with it (GET /api/v1/proof/consistency), shows the log was
  only ever appended to.
- The exception states "late", "closed" and the deployed_at column depend
  on other records of the log; they are as of the checkpoint's as_of time.
`
