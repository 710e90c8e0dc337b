"""Call recordings: capture on the media path (:mod:`.capture`, :mod:`.encode`),
storage, links and retention."""
