// Concurrent property for the default heap in safety modes 3 (one locked heap, a cache of unique-thunk slots per
// thread) and 2 (one heap per thread): random per-thread sequences of operations on pages and unique thunks (thunks
// and closures alike, ops.hpp) run on 2-4 threads at once, each checked against the thread's own model, while the
// thunks and closures of one shared sealed page and some shared unique thunks and closures (made before the threads
// start) are called from every thread and from the main thread.
// Some pages and unique thunks are handed off: moved to the main thread, which uses and destroys them after the threads
// have ended (in mode 2 they then belong to the orphanage).
//
// Threads never use RapidCheck (which is not thread-safe): they record what went wrong, and the main thread fails
// the case with the first message after joining.
#include <member_thunk/member_thunk.hpp>

#include "checks.hpp"
#include "family.hpp"
#include "model.hpp"
#include "ops.hpp"
#include "unique.hpp"

#include "support/maps.hpp"

#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <latch>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY != 2 && MEMBER_THUNK_DEFAULT_HEAP_SAFETY != 3
#error "the concurrent property is for MEMBER_THUNK_DEFAULT_HEAP_SAFETY 3 and 2"
#endif

namespace
{
	using prop::failure;
	using prop::op;
	using prop::op_kind;

	constexpr int mode = MEMBER_THUNK_DEFAULT_HEAP_SAFETY;
	constexpr std::size_t max_pages_per_thread = 24;

	// Reading /proc/self/maps is most of the run time; under ThreadSanitizer (whose job here is data races, while
	// the normal and AddressSanitizer runs check the mappings after every operation) it would take minutes, so
	// there the threads read it after every 8th operation and after their last.
#if defined(__SANITIZE_THREAD__)
	constexpr std::size_t maps_interval = 8;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
	constexpr std::size_t maps_interval = 8;
#else
	constexpr std::size_t maps_interval = 1;
#endif
#else
	constexpr std::size_t maps_interval = 1;
#endif

	/// Weighted: more thunks and calls than structural operations.
	[[nodiscard]] rc::Gen<op> op_gen()
	{
		return prop::op_gen({{2, op_kind::allocate},
		                     {5, op_kind::make_thunk},
		                     {1, op_kind::fill},
		                     {3, op_kind::mark_executable},
		                     {5, op_kind::call},
		                     {2, op_kind::call_shared},
		                     {1, op_kind::destroy},
		                     {1, op_kind::move},
		                     {1, op_kind::move_assign},
		                     {1, op_kind::compact},
		                     {1, op_kind::hand_off},
		                     {3, op_kind::make_unique},
		                     {3, op_kind::call_unique},
		                     {2, op_kind::destroy_unique},
		                     {1, op_kind::move_unique},
		                     {1, op_kind::move_assign_unique},
		                     {1, op_kind::hand_off_unique}});
	}

	/// The thunks made before the threads start: read by every thread, never changed while they run.
	struct shared_thunks
	{
		std::vector<prop::thunk_model> model; // the page's thunks, then the unique thunks
		std::vector<std::uintptr_t> thunks;

		[[nodiscard]] failure call(std::size_t a, const prop::argument_values& args) const
		{
			const std::size_t t = a % thunks.size();
			return prop::call_failure(model[t], thunks[t], args);
		}
	};

	/// What a thread leaves behind. Members are destroyed in reverse order: the handed-off pages and unique thunks
	/// before the objects they are bound to.
	struct thread_result
	{
		prop::object_store objects;
		std::vector<prop::live_page> handed_off;
		std::vector<prop::live_unique> handed_off_uniques;
		std::string failure; // empty when everything held
		std::size_t ops_done = 0;
	};

	[[nodiscard]] std::string describe(std::size_t index, const op& o)
	{
		std::ostringstream os;
		os << "op " << index << " ";
		prop::showValue(o, os);
		return os.str();
	}

	/// One thread's run: the operations in order, each checked against the thread's own model.
	class worker
	{
	public:
		worker(std::size_t index, const shared_thunks& shared, thread_result& out) :
		    shared_(shared), out_(out), set_(out.objects, static_cast<long>(index + 1) * 100'000, max_pages_per_thread)
		{
		}

		void run(const std::vector<op>& ops, std::latch& start)
		{
			start.arrive_and_wait();
			for (std::size_t i = 0; i < ops.size() && out_.failure.empty(); ++i)
			{
				try
				{
					if (auto problem = apply(ops[i]))
						out_.failure = describe(i, ops[i]) + ": " + *problem;
					else if (auto broken = check(i % maps_interval == 0 || i + 1 == ops.size()))
						out_.failure = describe(i, ops[i]) + ", then: " + *broken;
				}
				catch (const std::exception& e)
				{
					out_.failure = describe(i, ops[i]) + ": unexpected exception: " + e.what();
				}
				out_.ops_done = i + 1;
			}
			// In mode 2 what was not handed off must die on its thread: destroy it here, explicitly.
			set_.clear();
		}

	private:
		failure apply(const op& o)
		{
			prop::default_heap_functions heap;
			const std::size_t pages_before = set_.pages().size();
			const prop::step done = set_.run(heap, o);
			if (done.ran)
			{
				if (done.problem)
					return done.problem;
				for (std::size_t i = pages_before; i < set_.pages().size(); ++i)
					if (set_.pages()[i].model.kind != prop::build_kind)
						return std::string("the default heap handed out a page of ") +
						       prop::name(set_.pages()[i].model.kind);
				if (auto problem = check_revoked(done.page))
					return problem;
				// A unique thunk this thread destroyed waits in this thread's quarantine (mode 3: its cache; mode 2:
				// its heap), so no other thread writes its slot, and its page stays in the slab.
				if (done.unique.slot != nullptr &&
				    test::slot_target(done.unique.slot) != member_thunk::detail::arch::stubs::trap_target())
					return std::string("a destroyed unique thunk's data slot does not point at the trap");
				return std::nullopt;
			}
			switch (o.what)
			{
			case op_kind::call_shared:
				return shared_.call(o.a, o.args);
			case op_kind::hand_off:
				if (!set_.pages().empty())
					out_.handed_off.push_back(set_.take_page(o.a));
				return std::nullopt;
			case op_kind::hand_off_unique:
				if (!set_.uniques().empty())
					out_.handed_off_uniques.push_back(set_.take_unique(o.a));
				return std::nullopt;
			default:
				return "an operation this property does not generate";
			}
		}

		/// In mode 2 nobody else can reuse this thread's pages, so a destroyed page must be revoked now. In mode 3
		/// another thread may already have taken it again.
		static failure check_revoked(const std::optional<prop::freed_page>& freed)
		{
			if constexpr (mode == 2)
				if (freed)
					return prop::check_revoked(test::read_maps(), freed->kind, freed->address);
			return std::nullopt;
		}

		/// What must hold after every operation (`with_maps`: including what /proc/self/maps says).
		[[nodiscard]] failure check(bool with_maps) const
		{
			if (auto broken = prop::violation(member_thunk::detail::default_heap().first_violation()))
				return broken;
			if constexpr (mode == 2)
			{
				// This thread's heap holds exactly its pages and unique thunks, the handed-off ones included until
				// the thread ends.
				if (auto wrong = prop::check_counts(member_thunk::detail::default_heap().statistics(),
				                                    set_.pages().size() + out_.handed_off.size(),
				                                    set_.uniques().size() + out_.handed_off_uniques.size()))
					return wrong;
			}
			if (!with_maps)
				return std::nullopt;
			const auto maps = test::read_maps();
			if (auto wx = prop::check_wx(maps))
				return wx;
			return set_.check(maps);
		}

		const shared_thunks& shared_;
		thread_result& out_;
		prop::live_set set_;
	};

	void require(const failure& f)
	{
		if (f)
			RC_FAIL(*f);
	}

	/// Pages and unique thunks handed off by the threads, checked, used and destroyed by the main thread.
	void finish_handed_off(std::vector<thread_result>& results, const prop::argument_values& args)
	{
		const auto maps = test::read_maps();
		for (auto& r : results)
		{
			for (auto& p : r.handed_off)
			{
				require(prop::check_page(maps, p.page, p.model, p.thunks));
				p.page.mark_executable();
				p.model.executable = true;
				for (std::size_t t = 0; t < p.thunks.size(); ++t)
					require(prop::call_failure(p.model.thunks[t], p.thunks[t], args));
			}
			for (const auto& u : r.handed_off_uniques)
			{
				require(prop::check_unique(maps, u.thunk, u.address, u.slot));
				require(prop::call_failure(u.model, u.address, args));
			}
		}
		require(prop::check_wx(test::read_maps()));
		for (auto& r : results)
		{
			r.handed_off.clear();
			while (!r.handed_off_uniques.empty())
			{
				const std::byte* const slot = r.handed_off_uniques.back().slot;
				r.handed_off_uniques.pop_back();
				// Mode 2: the orphanage gives a slab page back with its last unique thunk, and its region with its
				// last page or unique thunk.
				require(prop::check_revoked_slot(test::read_maps(), slot, mode == 2));
			}
		}
	}
} // namespace

TEST_CASE("property: concurrent operations on pages and unique thunks agree with per-thread models",
          "[property][concurrent]")
{
	INFO("default heap, safety " << mode << ", pages of " << prop::name(prop::build_kind));
	rc::prop(std::string("concurrent, default heap, safety ") + std::to_string(mode), [] {
		const auto thread_count = *rc::gen::inRange<std::size_t>(2, 5);
		const auto plans = *rc::gen::container<std::vector<std::vector<op>>>(
		    thread_count, rc::gen::container<std::vector<op>>(op_gen()));
		const auto shared_forms =
		    *rc::gen::nonEmpty(rc::gen::container<std::vector<std::pair<std::size_t, prop::form>>>(
		        rc::gen::pair(prop::signature_gen(), prop::form_gen())));
		const auto shared_unique_forms =
		    *rc::gen::nonEmpty(rc::gen::container<std::vector<std::pair<std::size_t, prop::form>>>(
		        rc::gen::pair(prop::signature_gen(), prop::form_gen())));
		const auto main_calls = *rc::gen::container<std::vector<std::pair<std::size_t, prop::argument_values>>>(
		    rc::gen::pair(rc::gen::inRange<std::size_t>(0, 64), prop::arguments_gen()));
		const auto final_args = *prop::arguments_gen();

		// The shared page and unique thunks, made (and the page sealed) before any thread starts.
		prop::object_store shared_objects;
		shared_thunks shared;
		std::optional<member_thunk::page> shared_handle(member_thunk::allocate_page());
		prop::page_model shared_model;
		for (const auto& [signature, how] : shared_forms)
		{
			const long id = static_cast<long>(shared.thunks.size()) + 1;
			const prop::attempt made =
			    prop::make_on_page(*shared_handle, shared_model, signature, how, id, shared_objects);
			require(made.problem);
			if (!made.address)
				break; // the page is full
			shared.thunks.push_back(*made.address);
			shared.model.push_back(shared_model.thunks.back());
		}
		shared_handle->mark_executable();
		shared_model.executable = true;
		require(prop::check_page(test::read_maps(), *shared_handle, shared_model, shared.thunks));
		std::vector<prop::any_unique> shared_uniques;
		for (const auto& [signature, how] : shared_unique_forms)
		{
			prop::default_heap_functions heap;
			const long id = static_cast<long>(shared.thunks.size()) + 1;
			shared_uniques.push_back(prop::make_unique(heap, signature, how, id, shared_objects));
			shared.thunks.push_back(prop::address_of(shared_uniques.back()));
			shared.model.push_back({signature, how, id});
		}

		std::vector<thread_result> results(thread_count);
		{
			std::latch start(static_cast<std::ptrdiff_t>(thread_count + 1));
			std::vector<std::thread> threads;
			threads.reserve(thread_count);
			for (std::size_t i = 0; i < thread_count; ++i)
				threads.emplace_back([&, i] { worker(i, shared, results[i]).run(plans[i], start); });
			// The main thread calls the shared thunks too while the workers run.
			start.arrive_and_wait();
			failure main_failure;
			for (const auto& [t, args] : main_calls)
				if (!main_failure)
					main_failure = shared.call(t, args);
			for (auto& t : threads)
				t.join();
			if (main_failure)
				RC_FAIL("main thread: " + *main_failure);
		}
		for (std::size_t i = 0; i < thread_count; ++i)
			if (!results[i].failure.empty())
				RC_FAIL("thread " + std::to_string(i) + ", " + results[i].failure);

		// The threads are gone; what they handed off is all that is left of them (in mode 2, in the orphanage).
		std::size_t handed_off = 0;
		std::size_t handed_off_uniques = 0;
		for (const auto& r : results)
		{
			handed_off += r.handed_off.size();
			handed_off_uniques += r.handed_off_uniques.size();
		}
		const auto& heap = member_thunk::detail::default_heap();
#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY == 2
		const auto& orphanage = member_thunk::detail::orphanage<member_thunk::detail::os::native>::instance();
		require(prop::violation(orphanage.first_violation()));
		require(prop::check_counts(orphanage.statistics(), handed_off, handed_off_uniques));
		require(prop::check_counts(heap.statistics(), 1, shared_uniques.size()));
#else
		require(prop::check_counts(heap.statistics(), handed_off + 1, handed_off_uniques + shared_uniques.size()));
#endif
		// They still work, can still be sealed, and die here.
		finish_handed_off(results, final_args);
		for (std::size_t t = 0; t < shared.thunks.size(); ++t)
			require(prop::call_failure(shared.model[t], shared.thunks[t], final_args));
		shared_uniques.clear();
		shared_handle.reset();
		RC_ASSERT(test::writable_executable_mappings().empty());

		// Everything is gone. compact() gives back every region but those of the slab pages holding slots still in
		// quarantine (the main thread's, in its heap or cache).
		require(prop::violation(heap.first_violation()));
		require(prop::check_counts(heap.statistics(), 0, 0));
		member_thunk::compact();
		const auto stats = heap.statistics();
		RC_ASSERT(stats.regions <= stats.slab_pages);
		RC_ASSERT(stats.committed_bytes == stats.slab_pages * member_thunk::detail::os::native::page_size());
#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY == 2
		// The orphanage releases a region with its last page or unique thunk: nothing is left of the threads' heaps.
		require(prop::violation(orphanage.first_violation()));
		require(prop::check_counts(orphanage.statistics(), 0, 0));
		RC_ASSERT(orphanage.statistics().regions == 0u);
#endif
	});
}
