// member_thunk: what a heap reports about its use of memory.
#pragma once

#include <cstddef>

namespace member_thunk
{
	/// A heap's use of memory, for monitoring and benchmarks.
	struct heap_statistics
	{
		std::size_t regions = 0;            ///< reservations held
		std::size_t reserved_bytes = 0;     ///< address space reserved
		std::size_t committed_bytes = 0;    ///< memory committed (live pages and free pages kept for reuse)
		std::size_t live_pages = 0;         ///< pages held by page handles
		std::size_t cached_pages = 0;       ///< free pages kept committed (read-write, trap-filled) for reuse
		std::size_t live_unique_thunks = 0; ///< unique thunks alive
		std::size_t slab_pages = 0;         ///< pages whose slots the heap hands out to unique thunks
		std::size_t prebuilt_regions = 0;   ///< regions of prebuilt stubs (among `regions`)
		bool runtime_code = true;           ///< page handles get run-time code (false: prebuilt stubs)
	};
} // namespace member_thunk
