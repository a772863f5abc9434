// DeliveryHandoff: the short path from an accepted notification to the
// publisher. The Notifier asks how many of a notification's deliveries the
// local dispatcher can take, has the store claim that many in the insert's
// own transaction (leased like any claim), and hands them over once
// committed, so they are published without a claim query and without
// waiting for a worker to wake. Whatever is not handed over stays due in
// the outbox for the claiming workers. DeliveryDispatcher implements it.
//
//   int64_t granted = handoff.ReserveHandoff(targets.size());
//   ... insert with claim_count = granted, claim_lease = handoff.HandoffLease() ...
//   handoff.Handoff(std::move(claimed), granted, claim_started);
#ifndef HERALD_SERVICE_DISPATCH_DELIVERY_HANDOFF_H_
#define HERALD_SERVICE_DISPATCH_DELIVERY_HANDOFF_H_

#include <cstdint>
#include <vector>

#include "absl/time/time.h"
#include "service/core/types.h"

namespace herald {

// Implementations are thread-safe and never block for long.
class DeliveryHandoff {
 public:
  virtual ~DeliveryHandoff() = default;

  // Reserves room for up to `wanted` deliveries and returns how many
  // (0 when the dispatcher is full, stopping or cannot publish now). Every
  // reservation must be settled by exactly one Handoff call.
  virtual int64_t ReserveHandoff(int64_t wanted) = 0;

  // The lease the store must give deliveries claimed for a handoff.
  virtual absl::Duration HandoffLease() const = 0;

  // Hands over deliveries claimed at insert (at most `reserved` of them)
  // and frees the rest of the reservation; an empty vector only frees it.
  // `claim_started` is a time no later than the claiming transaction's
  // start: the lease is counted from it.
  virtual void Handoff(std::vector<ClaimedDelivery> deliveries, int64_t reserved,
                       absl::Time claim_started) = 0;
};

}  // namespace herald

#endif  // HERALD_SERVICE_DISPATCH_DELIVERY_HANDOFF_H_
