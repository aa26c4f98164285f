package apikeys

import "time"

// TrustFor is how long a server goes on accepting a key it has read
// without reading it again. Every call used to read its key: a database
// round trip per request, about a tenth of the service's CPU at its peak.
const TrustFor = time.Second

// revocationWait is how long Revoke waits after its commit: TrustFor, and
// a margin for servers whose clocks tick at slightly different rates and
// for a read stamped a little early.
const revocationWait = TrustFor + 100*time.Millisecond

// maxTrusted bounds the keys a server remembers (an installation has a
// few hundred: booking channels, partners, finance, admins).
const maxTrusted = 10_000
