// Fault-injection property: random sequences of operations on pages and unique thunks (thunks and closures alike: the
// signature an operation draws says which, ops.hpp) of a heap<null_lock, test::failing_os>, with OS failures injected
// at random points (which call fails, how many calls from now, with which errno), and a W^X policy that comes into
// force (or is lifted) at random points.
//
// Required, step by step:
//   - an operation during which an injected failure fired throws member_thunk::os_error carrying the injected errno
//     and naming the injected call ("injected <call>"); an operation during which none fired does not throw. Except:
//     a failure that closes a way of getting prebuilt stubs (other than a lack of memory) makes the heap try the next
//     way; a failed decommit of a cached page on the way to another is retried later; placement keeps a reservation
//     it could not give back; and image_pool_exhausted once every way is closed and the image pool is full;
//   - the W^X policy: allocate_page and make_unique_thunk never throw for it (the heap switches to prebuilt stubs when
//     a probe is refused, and for good); sealing a page of run-time code throws os_error naming the refused call and
//     leaves the page writable, and the next allocation is prebuilt; while no policy was ever in force, every page is
//     run-time code;
//   - in a destructor (destroying or move-assigning over a page or a unique thunk): nothing is thrown, a failed
//     revocation step leaves the page decommitted, a failed decommit leaves it cached (read-write, traps), and a
//     destroyed unique thunk's slot points at the trap; no revoked page can run a thunk again unless a newer live
//     page (or unique thunk) took its place;
//   - the heap's invariants hold, its statistics agree with what is alive, no mapping is writable and executable,
//     every page has the protection and layout its state says, every call of a thunk returns what its target
//     computes, and a new unique thunk never takes the slot of one of the last MEMBER_THUNK_UNIQUE_QUARANTINE
//     destroyed;
// and at the end, once faults are off, every page is sealed and called, everything is destroyed and the heap
// compacted: only slab pages holding slots in quarantine keep a region, and once the heap is gone every reservation
// that succeeded was released and the process's mapping count is back to what it was (not checked under
// AddressSanitizer or ThreadSanitizer, whose allocators map memory as they go).
//
// One combination is excluded: a failed revocation step (make_writable or protect) followed by a failed decommit of
// the same page. Nothing safe is left then and the process ends on purpose; tests/fault.cpp checks that in a forked
// child.
#include <member_thunk/member_thunk.hpp>

#include "checks.hpp"
#include "family.hpp"
#include "model.hpp"
#include "ops.hpp"
#include "unique.hpp"

#include "support/failing_os.hpp"
#include "support/maps.hpp"
#include "support/revoked.hpp"

#include <member_thunk/detail/prebuilt_regions.hpp>

#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace
{
	/// test::failing_os, also keeping the list of reservations that succeeded and were not released yet, so that the
	/// leak check can name any left behind, and the ranges released since the runner last looked.
	struct recording_os : test::failing_os
	{
		static inline std::vector<std::uintptr_t> held;
		static inline std::vector<std::pair<std::uintptr_t, std::size_t>> released;

		static result reserve(std::size_t size, void* preferred, void*& out) noexcept
		{
			const auto status = failing_os::reserve(size, preferred, out);
			if (status.ok())
				held.push_back(reinterpret_cast<std::uintptr_t>(out));
			return status;
		}

		static result unreserve(void* address, std::size_t size) noexcept
		{
			const auto status = failing_os::unreserve(address, size);
			if (status.ok())
			{
				std::erase(held, reinterpret_cast<std::uintptr_t>(address));
				released.emplace_back(reinterpret_cast<std::uintptr_t>(address), size);
			}
			return status;
		}

		static void reset() noexcept
		{
			held.clear();
			released.clear();
		}
	};

	static_assert(member_thunk::detail::os::backend<recording_os>);

	using faulty_heap = member_thunk::heap<member_thunk::null_lock, recording_os>;
	using pool = member_thunk::detail::image_pool_regions<recording_os>;
	using member_thunk::detail::stub_source;
	using member_thunk::detail::stub_sources;

	// A sanitizer's allocator (AddressSanitizer's, ThreadSanitizer's) maps memory on its own as the process runs, so
	// the process's mapping count moves for reasons that have nothing to do with the heap: under one, the leak check
	// rests on the heap's own reservations only. (Nor can it look at where they were: the allocator may map memory
	// there once they are gone.)
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	constexpr bool exact_mapping_count = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
	constexpr bool exact_mapping_count = false;
#else
	constexpr bool exact_mapping_count = true;
#endif
#else
	constexpr bool exact_mapping_count = true;
#endif

	using prop::failure;
	using prop::op;
	using prop::op_kind;
	using test::os_call;
	using test::os_faults;

	constexpr std::size_t call_kinds = static_cast<std::size_t>(os_call::count);
	constexpr std::size_t max_pages = 40;

	[[nodiscard]] rc::Gen<op> op_gen()
	{
		return prop::op_gen({{3, op_kind::allocate},
		                     {5, op_kind::make_thunk},
		                     {3, op_kind::mark_executable},
		                     {4, op_kind::call},
		                     {3, op_kind::destroy},
		                     {1, op_kind::destroy_all},
		                     {1, op_kind::move},
		                     {1, op_kind::move_assign},
		                     {3, op_kind::compact},
		                     {5, op_kind::inject},
		                     {1, op_kind::refuse_execution},
		                     {3, op_kind::make_unique},
		                     {2, op_kind::call_unique},
		                     {2, op_kind::destroy_unique},
		                     {1, op_kind::move_unique},
		                     {1, op_kind::move_assign_unique}});
	}

	[[nodiscard]] bool has(const std::vector<os_call>& fired, os_call c)
	{
		return std::find(fired.begin(), fired.end(), c) != fired.end();
	}

	/// Whether every call that fired is one of `calls`.
	[[nodiscard]] bool only(const std::vector<os_call>& fired, std::initializer_list<os_call> calls)
	{
		return std::all_of(fired.begin(), fired.end(),
		                   [&](os_call c) { return std::find(calls.begin(), calls.end(), c) != calls.end(); });
	}

	[[nodiscard]] int pending(os_call c)
	{
		return os_faults::fail_in.at(static_cast<std::size_t>(c));
	}

	void require(const failure& f)
	{
		if (f)
			RC_FAIL(*f);
	}

	/// What a page's seal attempt found before it ran (mark_executable may throw).
	struct sealing
	{
		std::size_t index = 0;
		prop::page_kind kind = prop::page_kind::runtime_code;
		bool was_executable = false;
	};

	class runner
	{
	public:
		runner(faulty_heap& heap, prop::object_store& objects) : heap_(heap), set_(objects, 1, max_pages) {}

		/// Runs one step and checks everything that must hold after it.
		void step(const op& o)
		{
			switch (o.what)
			{
			case op_kind::destroy_all:
				// One page at a time, newest first, each a step of its own.
				while (!set_.pages().empty())
				{
					op one;
					one.what = op_kind::destroy;
					one.a = set_.pages().size() - 1;
					step(one);
				}
				return;
			case op_kind::inject:
				os_faults::error = o.error;
				os_faults::fail_next(o.call, o.nth);
				return;
			case op_kind::refuse_execution:
				os_faults::refuse_execution = o.on;
				ever_refused_ = ever_refused_ || o.on;
				return;
			default:
				break;
			}
			const bool in_destructor = o.what == op_kind::destroy || o.what == op_kind::move_assign ||
			                           o.what == op_kind::destroy_unique || o.what == op_kind::move_assign_unique;
			if (in_destructor && pending(os_call::decommit) == 1)
			{
				// The fatal double fault (see the top of this file).
				if (pending(os_call::make_writable) == 1)
					os_faults::fail_next(os_call::make_writable, 0);
				if (pending(os_call::protect) == 1)
					os_faults::fail_next(os_call::protect, 0);
			}

			const auto before = os_faults::fail_in;
			const int way_before = stub_sources::first.load();
			const bool runtime_before = heap_.statistics().runtime_code;
			const std::size_t pages_before = set_.pages().size();
			const bool refusing = os_faults::refuse_execution;
			sealing_.reset();
			freed_.reset();
			std::optional<member_thunk::os_error> error;
			std::optional<std::string> exhausted;
			try
			{
				require(apply(o));
			}
			catch (const member_thunk::os_error& e)
			{
				error = e;
			}
			catch (const member_thunk::image_pool_exhausted& e)
			{
				exhausted = e.what();
			}
			std::vector<os_call> fired;
			for (std::size_t k = 0; k < call_kinds; ++k)
				if (before.at(k) > 0 && os_faults::fail_in.at(k) == 0)
					fired.push_back(static_cast<os_call>(k));
			const auto stats = heap_.statistics();

			check_kinds(o, pages_before, refusing, runtime_before, stats.runtime_code);
			if (exhausted)
			{
				// Every way of mapping stubs is closed (the copy made at run time also when the heap makes no more
				// run-time code), and the image pool has no page left.
				RC_ASSERT(o.what == op_kind::allocate || o.what == op_kind::make_unique);
				const int way = stub_sources::first.load();
				RC_ASSERT(way == static_cast<int>(stub_source::image_pool) ||
				          (way == static_cast<int>(stub_source::runtime_copy) && !stats.runtime_code));
				RC_ASSERT(pool::pages_taken() == pool::max_pages);
			}
			else if (in_destructor)
			{
				RC_ASSERT(!error); // (it cannot: the destructor is noexcept)
				check_destructor(before);
			}
			else if (refused_seal(refusing, fired))
			{
				// The policy refused to seal a page of run-time code: reported, the page left writable, and the heap
				// makes no more run-time code.
				if (!error)
					RC_FAIL("a W^X policy refused to seal a page of run-time code, but nothing was thrown");
				RC_ASSERT(error->code().value() == EACCES);
				const std::string what = error->what();
				if (what.find("injected make_executable") == std::string::npos || what.find("W^X") == std::string::npos)
					RC_FAIL("the os_error does not name the refused call and the policy: " + what);
				RC_ASSERT(!set_.pages()[sealing_->index].model.executable);
				seal_refused_ = true;
			}
			else if (fired.empty())
			{
				if (error)
					RC_FAIL(std::string("os_error without an injected failure: ") + error->what());
			}
			else if (!error)
				check_silent(o, fired, way_before, stats);
			else
				check_error(o, *error, fired);
			verify();
		}

		/// Faults off: seals every page, calls every thunk, destroys everything and compacts.
		void finish(const prop::argument_values& args)
		{
			os_faults::reset();
			for (std::size_t i = 0; i < set_.pages().size(); ++i)
				set_.mark_executable(i);
			require(set_.call_all(args));
			verify();
			set_.clear();
			verify();
			heap_.compact();
			// Only slab pages holding slots in quarantine keep a region; every other reservation was released.
			const auto stats = heap_.statistics();
			RC_ASSERT(stats.regions <= stats.slab_pages);
			RC_ASSERT(stats.committed_bytes == stats.slab_pages * recording_os::page_size());
			RC_ASSERT(recording_os::held.size() == stats.regions - pool::pages_taken());
			require(prop::violation(heap_.first_violation()));
		}

	private:
		/// Applies `o` (throws what the library throws).
		failure apply(const op& o)
		{
			if (o.what == op_kind::mark_executable && !set_.pages().empty())
			{
				const std::size_t i = o.a % set_.pages().size();
				sealing_ = sealing{i, set_.pages()[i].model.kind, set_.pages()[i].model.executable};
			}
			const prop::step done = set_.run(heap_, o);
			if (!done.ran)
				return "an operation this property does not generate";
			if (done.problem)
				return done.problem;
			freed_ = done.page;
			if (freed_)
				revoked_.push_back(*freed_);
			// A destroyed unique thunk's data slot points at the trap (no OS call is made: its page stays writable).
			if (done.unique.slot != nullptr)
				return prop::check_revoked_slot(test::read_maps(), done.unique.slot);
			return std::nullopt;
		}

		/// Run-time code or prebuilt stubs: the heap switches to prebuilt stubs only for a W^X policy, for good.
		void check_kinds(const op& o, std::size_t pages_before, bool refusing, bool runtime_before, bool runtime_after)
		{
			if (!runtime_before)
				RC_ASSERT(!runtime_after);
			if (runtime_before && !runtime_after)
			{
				// allocate_page switches after a refused probe or seal, compact() when it gives back the region of a
				// refused seal.
				if (o.what == op_kind::allocate)
					RC_ASSERT(refusing || seal_refused_);
				else if (o.what == op_kind::compact)
					RC_ASSERT(seal_refused_);
				else
					RC_FAIL(std::string("the heap stopped making run-time code in ") + prop::name(o.what));
			}
			if (o.what == op_kind::allocate && pages_before < max_pages && seal_refused_)
				RC_ASSERT(!runtime_after); // the refusal is noted before anything can fail
			for (std::size_t i = pages_before; i < set_.pages().size(); ++i)
			{
				const bool prebuilt = set_.pages()[i].model.kind == prop::page_kind::prebuilt;
				if (prebuilt)
					RC_ASSERT(!runtime_after);
				if (!runtime_before || seal_refused_)
					RC_ASSERT(prebuilt);
				if (!ever_refused_)
					RC_ASSERT(!prebuilt);
			}
			if (!runtime_after)
				seal_refused_ = false; // (noted)
		}

		/// Whether the step sealed a writable page of run-time code while the W^X policy was in force (and no
		/// injected failure of make_executable came first).
		[[nodiscard]] bool refused_seal(bool refusing, const std::vector<os_call>& fired) const
		{
			return sealing_ && refusing && sealing_->kind == prop::page_kind::runtime_code &&
			       !sealing_->was_executable && !has(fired, os_call::make_executable);
		}

		/// A destructor never throws: a page it revoked is decommitted when the first revocation step (made
		/// writable again: make_writable for run-time code, protect for prebuilt stubs) failed, cached when only a
		/// decommit failed.
		void check_destructor(const std::array<int, call_kinds>& before)
		{
			if (!freed_)
				return;
			const std::string how = prop::revocation_in(test::read_maps(), freed_->kind, freed_->address);
			RC_ASSERT(how == "decommitted" || how == "cached");
			const os_call first_step =
			    freed_->kind == prop::page_kind::prebuilt ? os_call::protect : os_call::make_writable;
			if (before.at(static_cast<std::size_t>(first_step)) == 1)
				RC_ASSERT(how == "decommitted");
			else if (before.at(static_cast<std::size_t>(os_call::decommit)) == 1)
				RC_ASSERT(how == "cached");
		}

		/// Injected failures fired and nothing was thrown: only where the heap has another way, or retries.
		void check_silent(const op& o, const std::vector<os_call>& fired, int way_before,
		                  const member_thunk::heap_statistics& stats) const
		{
			const bool takes_pages = o.what == op_kind::allocate || o.what == op_kind::make_unique;
			// Placement gives back a reservation the OS put out of direct reach and tries nearer (or a probed region
			// of run-time code the policy refused); if giving it back fails, the heap keeps it (listed, or as the
			// region): nothing leaks and nothing needs reporting.
			if (o.what == op_kind::allocate && only(fired, {os_call::unreserve}))
				return;
			// A way of getting prebuilt stubs failed for another reason than a lack of memory: it is closed for good,
			// and the next one tried.
			if (takes_pages && stub_sources::first.load() > way_before && os_faults::error != ENOMEM &&
			    only(fired, {os_call::reserve, os_call::map_image_code, os_call::map_sealed_copy,
			                 os_call::make_writable, os_call::make_executable, os_call::flush_instruction_cache,
			                 os_call::set_call_targets, os_call::unreserve, os_call::decommit, os_call::protect}))
				return;
			// A cached page of the other kind (or the image pool's) decommitted on the way to a new page: if the OS
			// refuses, it stays cached, and compact() decommits it.
			if (takes_pages && only(fired, {os_call::decommit, os_call::protect}))
				return;
			// compact() decommits what it could not decommit a moment before (a freed slab page pushed the oldest
			// cached page out of the queue): nothing is left cached.
			if (o.what == op_kind::compact && only(fired, {os_call::decommit, os_call::protect}) &&
			    stats.cached_pages == 0)
				return;
			RC_FAIL("an injected failure of " + std::string(test::call_name(fired.front())) +
			        " fired, but nothing was thrown");
		}

		/// An os_error: the injected errno, naming an injected call that fired.
		void check_error(const op& o, const member_thunk::os_error& error, const std::vector<os_call>& fired) const
		{
			RC_ASSERT(error.code().value() == os_faults::error);
			RC_ASSERT(error.code().category() == std::system_category());
			const std::string what = error.what();
			bool named = false;
			for (const auto c : fired)
				named = named || what.find(std::string("injected ") + test::call_name(c)) != std::string::npos;
			if (!named)
				RC_FAIL("the os_error does not name the injected call: " + what);
			RC_ASSERT(what.find("member_thunk: could not ") == 0);
			// A page whose sealing failed stays writable, unless putting it back (a commit) failed too.
			if (o.what == op_kind::mark_executable && sealing_ && set_.pages()[sealing_->index].model.executable)
				RC_ASSERT(has(fired, os_call::make_writable));
		}

		void verify()
		{
			require(prop::violation(heap_.first_violation()));
			const auto stats = heap_.statistics();
			require(prop::check_counts(stats, set_.pages().size(), set_.uniques().size()));
			require(prop::check_memory<recording_os>(stats));
			const auto maps = test::read_maps();
			require(prop::check_wx(maps));
			require(set_.check(maps));
			check_revoked(maps);
		}

		/// Every page ever revoked stays revoked (never executable; a page of prebuilt stubs: every slot pointing at
		/// the trap), unless a live page or unique thunk now sits there. A page whose region was given back is
		/// forgotten: its address may belong to anything since.
		void check_revoked(const std::vector<test::mapping>& maps)
		{
			for (const auto& [address, size] : recording_os::released)
				std::erase_if(revoked_, [&, address = address, size = size](const prop::freed_page& p) {
					return reinterpret_cast<std::uintptr_t>(p.address) - address < size;
				});
			recording_os::released.clear();
			const std::size_t page_size = recording_os::page_size();
			std::vector<std::uintptr_t> live;
			for (const auto& p : set_.pages())
				live.push_back(reinterpret_cast<std::uintptr_t>(member_thunk::detail::page_access::address_of(p.page)));
			for (const auto& u : set_.uniques())
				live.push_back(reinterpret_cast<std::uintptr_t>(u.slot) / page_size * page_size);
			for (const auto& p : revoked_)
			{
				if (std::find(live.begin(), live.end(), reinterpret_cast<std::uintptr_t>(p.address)) != live.end())
					continue;
				if (p.kind == prop::page_kind::prebuilt)
				{
					if (!test::prebuilt_page_traps_in(maps, p.address))
						RC_FAIL("a revoked page of prebuilt stubs has a slot that does not point at the trap");
				}
				else if (test::protection_in(maps, p.address) == "r-x")
					RC_FAIL("a revoked page of run-time code is executable again");
			}
		}

		faulty_heap& heap_;
		prop::live_set set_;
		std::vector<prop::freed_page> revoked_;
		std::optional<sealing> sealing_;        // the page the step sealed
		std::optional<prop::freed_page> freed_; // the page the step destroyed
		bool ever_refused_ = false;             // a W^X policy was in force at some point
		bool seal_refused_ = false;             // the policy refused a seal, and no allocation has noted it yet
	};

	/// The image pool's memory, all of it free, read-write again as the program was loaded: a pool page the heap
	/// made inaccessible stays so once free (it is the program's, and cannot be given back), which splits the
	/// mapping of the program's .bss and would move the process's mapping count from one case to the next.
	void restore_image_pool()
	{
		namespace detail = member_thunk::detail;
		RC_ASSERT(pool::pages_taken() == 0u);
		const auto status = detail::os::native::protect(detail::arch::stubs::pool_data(),
		                                                detail::arch::stubs::pool_size, detail::os::access::read_write);
		RC_ASSERT(status.ok());
	}

	/// Resets the injected faults and the ways of getting prebuilt stubs (process-wide) around each case.
	struct fault_scope
	{
		fault_scope()
		{
			os_faults::reset();
			recording_os::reset();
			stub_sources::reset();
			restore_image_pool();
		}
		fault_scope(const fault_scope&) = delete;
		fault_scope& operator=(const fault_scope&) = delete;
		fault_scope(fault_scope&&) = delete;
		fault_scope& operator=(fault_scope&&) = delete;
		~fault_scope()
		{
			os_faults::reset();
			recording_os::reset();
			stub_sources::reset();
		}
	};
} // namespace

TEST_CASE("property: injected OS failures and W^X refusals are reported or absorbed, leak nothing and never leave a "
          "wrong or executable thunk",
          "[property][fault]")
{
	rc::prop("fault injection", [] {
		const auto ops = *rc::gen::scale(2.0, rc::gen::container<std::vector<op>>(op_gen()));
		const auto final_args = *prop::arguments_gen();

		const fault_scope faults;
		const auto baseline = test::mapping_count();
		{
			prop::object_store objects; // outlives the heap's pages and unique thunks
			{
				faulty_heap heap;
				runner r(heap, objects);
				for (const auto& o : ops)
					r.step(o);
				r.finish(final_args);
			}
			// The heap is gone: every reservation that succeeded was released.
			for (const auto address : recording_os::held)
				RC_FAIL("the reservation at " + std::to_string(address) + " was never released");
			restore_image_pool();
			if (exact_mapping_count)
				RC_ASSERT(test::mapping_count() == baseline);
		}
		if (exact_mapping_count)
			RC_ASSERT(test::mapping_count() == baseline);
	});
}
