// Persistent outbound sequence-number reservations for manually keyed SAs.
//
// A manually keyed SA keeps its key across restarts, and its AEAD nonce (AES-GCM, GMAC,
// ChaCha20-Poly1305) or CBC IV is derived from the ESP sequence number: starting again at
// seq_start would use the same (key, nonce) pairs twice (RFC 4106 8, RFC 4543, RFC 7634). So
// every outbound static SA may only use sequence numbers up to a *reservation* that is on disk
// before the data plane may use it. After a crash, upgrade or reboot the SA continues above the
// last reservation. The jump is at most one reservation block (ESN: 2^30, well below the 2^32
// that a receiver's ESN inference tolerates; without ESN: 2^24, so a key survives 256 restarts).
//
// The file holds one line per SA: "<spi hex> <fingerprint> <reserved>", where the fingerprint is
// the first 16 bytes of SHA-256("espgw seq" || key), so a new key starts afresh and the file
// reveals nothing about the key. Written as a whole to a temporary file, fsync'd, renamed over the
// old one and the directory fsync'd: a crash leaves the old or the new file, never a mix.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace espgw::state {

class SeqStore {
 public:
  static constexpr uint64_t kBlockEsn = uint64_t(1) << 30;
  static constexpr uint64_t kBlockNoEsn = uint64_t(1) << 24;

  // Loads `path` if it exists (creating its directory, mode 0700, if needed). A file that exists
  // but cannot be read or parsed is an error: starting from zero could reuse nonces.
  bool open(const std::string& path, std::string* err);
  const std::string& path() const { return path_; }

  // The record name of an SA: SPI and key fingerprint.
  static std::string sa_key(uint32_t spi, const uint8_t* key, size_t key_len);

  // The highest sequence number that may have been used under this record (0: none yet).
  uint64_t reserved(const std::string& k) const;
  void set(const std::string& k, uint64_t reserved) { recs_[k] = reserved; }
  // Drops records not in `keep` (keys no longer configured).
  void retain(const std::set<std::string>& keep);
  size_t size() const { return recs_.size(); }

  // Writes all records durably (see above).
  bool flush(std::string* err);

  // The reservation an SA should hold now: `used` is its last sequence number, max_seq the last
  // one its sequence space allows.
  static uint64_t next_reservation(uint64_t used, bool esn, uint64_t max_seq) {
    uint64_t block = esn ? kBlockEsn : kBlockNoEsn;
    return max_seq - used < block ? max_seq : used + block;
  }
  // Whether an SA with this reservation should extend it (less than half a block left).
  static bool needs_extension(uint64_t used, uint64_t reserved, bool esn, uint64_t max_seq) {
    uint64_t block = esn ? kBlockEsn : kBlockNoEsn;
    return reserved < max_seq && reserved - used < block / 2;
  }

 private:
  std::string path_;
  std::map<std::string, uint64_t> recs_;
};

}  // namespace espgw::state
