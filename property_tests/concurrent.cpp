// Concurrent property for the default heap in safety modes 3 (one locked heap) and 2 (one heap per thread): random
// per-thread operation sequences run on 2-4 threads at once, each checked against the thread's own model, while the
// thunks of one shared sealed page (made before the threads start) are called from every thread and from the main
// thread. Some pages are handed off: moved to the main thread, which seals, calls and destroys them after the
// threads have ended (in mode 2 they then belong to the orphanage).
//
// Threads never use RapidCheck (which is not thread-safe): they record what went wrong, and the main thread fails
// the case with the first message after joining.
#include <member_thunk/member_thunk.hpp>

#include "family.hpp"
#include "support/maps.hpp"
#include "support/revoked.hpp"

#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <iomanip>
#include <latch>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY != 2 && MEMBER_THUNK_DEFAULT_HEAP_SAFETY != 3
#error "the concurrent property is for MEMBER_THUNK_DEFAULT_HEAP_SAFETY 3 and 2"
#endif

namespace
{
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

	enum class kind : std::uint8_t
	{
		allocate,
		make_thunk,
		fill,
		mark_executable,
		call_own,
		call_shared,
		destroy,
		move,
		compact,
		hand_off,
		count
	};

	/// One operation of a thread. Indices are taken modulo what exists when the operation runs.
	struct op
	{
		kind what = kind::allocate;
		std::size_t a = 0;
		std::size_t signature = 0;
		prop::form how = prop::form::compile_time_member;
		prop::argument_values args{};
	};

	[[nodiscard]] const char* name(kind k)
	{
		switch (k)
		{
		case kind::allocate:
			return "allocate";
		case kind::make_thunk:
			return "make_thunk";
		case kind::fill:
			return "fill";
		case kind::mark_executable:
			return "mark_executable";
		case kind::call_own:
			return "call_own";
		case kind::call_shared:
			return "call_shared";
		case kind::destroy:
			return "destroy";
		case kind::move:
			return "move";
		case kind::compact:
			return "compact";
		case kind::hand_off:
			return "hand_off";
		case kind::count:
			break;
		}
		return "?";
	}

	void showValue(const op& o, std::ostream& os)
	{
		os << name(o.what);
		switch (o.what)
		{
		case kind::make_thunk:
		case kind::fill:
			os << "(" << o.a << ", " << prop::signature_names.at(o.signature) << ", " << prop::name(o.how) << ")";
			break;
		case kind::call_own:
		case kind::call_shared:
			os << "(" << o.a << ", ";
			prop::show_arguments(o.args, os);
			os << ")";
			break;
		case kind::mark_executable:
		case kind::destroy:
		case kind::move:
		case kind::hand_off:
			os << "(" << o.a << ")";
			break;
		default:
			break;
		}
	}

	[[nodiscard]] rc::Gen<op> op_gen()
	{
		// Weighted: more thunks and calls than structural operations.
		return rc::gen::exec([] {
			op o;
			o.what = *rc::gen::weightedElement<kind>({{2, kind::allocate},
			                                          {5, kind::make_thunk},
			                                          {1, kind::fill},
			                                          {3, kind::mark_executable},
			                                          {5, kind::call_own},
			                                          {2, kind::call_shared},
			                                          {1, kind::destroy},
			                                          {1, kind::move},
			                                          {1, kind::compact},
			                                          {1, kind::hand_off}});
			o.a = *rc::gen::inRange<std::size_t>(0, 64);
			if (o.what == kind::make_thunk || o.what == kind::fill)
			{
				o.signature = *prop::signature_gen();
				o.how = *prop::form_gen();
			}
			if (o.what == kind::call_own || o.what == kind::call_shared)
				o.args = *prop::arguments_gen();
			return o;
		});
	}

	struct live_page
	{
		member_thunk::page page;
		prop::page_model model;
		std::vector<std::uintptr_t> thunks;
	};

	/// The shared sealed page: read by every thread, never changed while they run.
	struct shared_page
	{
		std::vector<prop::thunk_model> model;
		std::vector<std::uintptr_t> thunks;
	};

	/// What a thread leaves behind. Members are destroyed in reverse order: the handed-off pages before the objects
	/// they are bound to.
	struct thread_result
	{
		prop::object_store objects;
		std::vector<live_page> handed_off;
		std::string failure; // empty when everything held
		std::size_t ops_done = 0;
	};

	[[nodiscard]] std::string describe(std::size_t index, const op& o)
	{
		std::ostringstream os;
		os << "op " << index << " ";
		showValue(o, os);
		return os.str();
	}

	[[nodiscard]] std::optional<std::string> check_call(const prop::thunk_model& t, std::uintptr_t address,
	                                                    const prop::argument_values& args)
	{
		const double actual = prop::invoke(t.signature, address, args);
		const double expected = prop::expected(t.signature, t.how, t.object, args);
		if (actual == expected)
			return std::nullopt;
		std::ostringstream os;
		os << std::setprecision(17) << "thunk " << prop::signature_names.at(t.signature) << " " << prop::name(t.how)
		   << " of object " << t.object << " returned " << actual << ", expected " << expected;
		return os.str();
	}

	/// One thread's run: the operations in order, each checked against the thread's own model.
	class worker
	{
	public:
		worker(std::size_t index, const shared_page& shared, thread_result& out) :
		    shared_(shared), out_(out), next_object_(static_cast<long>(index + 1) * 100'000)
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
			// In mode 2 a page must die on its thread unless handed off: destroy them here, explicitly.
			pages_.clear();
		}

	private:
		using failure = std::optional<std::string>;

		failure apply(const op& o)
		{
			switch (o.what)
			{
			case kind::allocate:
				if (pages_.size() < max_pages_per_thread)
					pages_.push_back({member_thunk::allocate_page(), {}, {}});
				return std::nullopt;
			case kind::make_thunk:
				return pages_.empty() ? std::nullopt : make_thunk(pages_[o.a % pages_.size()], o);
			case kind::fill:
				return pages_.empty() ? std::nullopt : fill(pages_[o.a % pages_.size()], o);
			case kind::mark_executable:
				if (!pages_.empty())
				{
					auto& p = pages_[o.a % pages_.size()];
					p.page.mark_executable();
					p.model.executable = true;
				}
				return std::nullopt;
			case kind::call_own:
				return call_own(o);
			case kind::call_shared: {
				const std::size_t t = o.a % shared_.thunks.size();
				return check_call(shared_.model[t], shared_.thunks[t], o.args);
			}
			case kind::destroy:
				return destroy(o.a);
			case kind::move:
				if (!pages_.empty())
				{
					const std::size_t i = o.a % pages_.size();
					live_page moved{member_thunk::page(std::move(pages_[i].page)), std::move(pages_[i].model),
					                std::move(pages_[i].thunks)};
					pages_.erase(pages_.begin() + static_cast<std::ptrdiff_t>(i));
					pages_.push_back(std::move(moved));
				}
				return std::nullopt;
			case kind::compact:
				member_thunk::compact();
				return std::nullopt;
			case kind::hand_off:
				if (!pages_.empty())
				{
					const std::size_t i = o.a % pages_.size();
					out_.handed_off.push_back(std::move(pages_[i]));
					pages_.erase(pages_.begin() + static_cast<std::ptrdiff_t>(i));
				}
				return std::nullopt;
			case kind::count:
				break;
			}
			return "unknown operation";
		}

		failure make_thunk(live_page& p, const op& o)
		{
			const auto expected = prop::predict(p.model, o.how);
			try
			{
				const long id = next_object_++;
				const std::uintptr_t address = prop::make_thunk(p.page, o.signature, o.how, id, out_.objects);
				if (expected != prop::outcome::made)
					return std::string("make_thunk succeeded where the model expected it to throw");
				p.thunks.push_back(address);
				prop::add_thunk(p.model, o.signature, o.how, id);
			}
			catch (const member_thunk::page_full&)
			{
				if (expected != prop::outcome::page_full)
					return std::string("unexpected page_full");
			}
			catch (const member_thunk::page_executable&)
			{
				if (expected != prop::outcome::page_executable)
					return std::string("unexpected page_executable");
			}
			return std::nullopt;
		}

		/// Thunks like `o` until the page is full or sealed, and one more that must throw.
		failure fill(live_page& p, const op& o)
		{
			for (;;)
			{
				const auto before = prop::predict(p.model, o.how);
				if (auto problem = make_thunk(p, o))
					return problem;
				if (before != prop::outcome::made)
					return std::nullopt;
			}
		}

		failure call_own(const op& o)
		{
			std::vector<std::pair<std::size_t, std::size_t>> callable;
			for (std::size_t p = 0; p < pages_.size(); ++p)
				if (pages_[p].model.executable)
					for (std::size_t t = 0; t < pages_[p].thunks.size(); ++t)
						callable.emplace_back(p, t);
			if (callable.empty())
				return std::nullopt;
			const auto [p, t] = callable[o.a % callable.size()];
			return check_call(pages_[p].model.thunks[t], pages_[p].thunks[t], o.args);
		}

		failure destroy(std::size_t a)
		{
			if (pages_.empty())
				return std::nullopt;
			const std::size_t i = a % pages_.size();
			// 0: the page has no thunk, so nothing is known of its address. (Not an optional: GCC 12 at -O3 warns
			// that its value may be used uninitialised.)
			const std::uintptr_t address = pages_[i].thunks.empty() ? 0 : pages_[i].thunks.front();
			{
				const live_page doomed = std::move(pages_[i]);
				pages_.erase(pages_.begin() + static_cast<std::ptrdiff_t>(i));
			}
			// In mode 2 nobody else can reuse this thread's pages, so the page must be revoked now. In mode 3
			// another thread may already have taken it again.
			if constexpr (mode == 2)
				if (address != 0)
				{
					const auto how = test::revocation_of(reinterpret_cast<const void*>(address));
					if (how != "decommitted" && how != "cached")
						return "a destroyed page is " + how;
				}
			return std::nullopt;
		}

		/// What must hold after every operation (`with_maps`: including what /proc/self/maps says).
		failure check(bool with_maps) const
		{
			if (!member_thunk::detail::default_heap().is_valid())
				return std::string("the default heap is not valid");
			if constexpr (mode == 2)
			{
				// This thread's heap holds exactly its pages, the handed-off ones included until the thread ends.
				const auto live = member_thunk::detail::default_heap().statistics().live_pages;
				if (live != pages_.size() + out_.handed_off.size())
					return "the thread's heap has " + std::to_string(live) + " live pages, the model " +
					       std::to_string(pages_.size() + out_.handed_off.size());
			}
			if (!with_maps)
				return std::nullopt;
			const auto maps = test::read_maps();
			if (const auto wx = test::writable_executable_in(maps); !wx.empty())
				return "a mapping is writable and executable: " + test::describe(wx.front());
			for (const auto& p : pages_)
			{
				if (p.page.size() != p.model.thunks.size() || p.page.executable() != p.model.executable ||
				    p.page.full() != (p.model.slots == prop::slots_per_page()))
					return std::string("a page's observers disagree with the model");
				if (!p.thunks.empty())
				{
					const std::string protection =
					    test::protection_in(maps, reinterpret_cast<const void*>(p.thunks.front()));
					if (protection != (p.model.executable ? "r-x" : "rw-"))
						return "a page is " + protection;
				}
			}
			return std::nullopt;
		}

		const shared_page& shared_;
		thread_result& out_;
		std::vector<live_page> pages_;
		long next_object_;
	};

	void check_all_calls(const std::vector<prop::thunk_model>& model, const std::vector<std::uintptr_t>& thunks,
	                     const prop::argument_values& args)
	{
		for (std::size_t t = 0; t < thunks.size(); ++t)
			if (const auto failure = check_call(model[t], thunks[t], args))
				RC_FAIL(*failure);
	}
} // namespace

TEST_CASE("property: concurrent page operations agree with per-thread models", "[property][concurrent]")
{
	INFO("default heap, safety " << mode);
	rc::prop(std::string("concurrent, default heap, safety ") + std::to_string(mode), [] {
		const auto thread_count = *rc::gen::inRange<std::size_t>(2, 5);
		const auto plans = *rc::gen::container<std::vector<std::vector<op>>>(
		    thread_count, rc::gen::container<std::vector<op>>(op_gen()));
		const auto shared_forms =
		    *rc::gen::nonEmpty(rc::gen::container<std::vector<std::pair<std::size_t, prop::form>>>(
		        rc::gen::pair(prop::signature_gen(), prop::form_gen())));
		const auto main_calls = *rc::gen::container<std::vector<std::pair<std::size_t, prop::argument_values>>>(
		    rc::gen::pair(rc::gen::inRange<std::size_t>(0, 64), prop::arguments_gen()));
		const auto final_args = *prop::arguments_gen();

		// The shared page, made and sealed before any thread starts.
		prop::object_store shared_objects;
		shared_page shared;
		std::optional<member_thunk::page> shared_handle(member_thunk::allocate_page());
		prop::page_model shared_model;
		for (const auto& [signature, how] : shared_forms)
		{
			if (prop::predict(shared_model, how) != prop::outcome::made)
				break;
			const long id = static_cast<long>(shared_model.thunks.size()) + 1;
			shared.thunks.push_back(prop::make_thunk(*shared_handle, signature, how, id, shared_objects));
			prop::add_thunk(shared_model, signature, how, id);
		}
		shared.model = shared_model.thunks;
		shared_handle->mark_executable();

		std::vector<thread_result> results(thread_count);
		{
			std::latch start(static_cast<std::ptrdiff_t>(thread_count + 1));
			std::vector<std::thread> threads;
			threads.reserve(thread_count);
			for (std::size_t i = 0; i < thread_count; ++i)
				threads.emplace_back([&, i] { worker(i, shared, results[i]).run(plans[i], start); });
			// The main thread calls the shared thunks too while the workers run.
			start.arrive_and_wait();
			std::optional<std::string> main_failure;
			for (const auto& [t, args] : main_calls)
				if (!main_failure)
					main_failure = check_call(shared.model[t % shared.thunks.size()],
					                          shared.thunks[t % shared.thunks.size()], args);
			for (auto& t : threads)
				t.join();
			if (main_failure)
				RC_FAIL("main thread: " + *main_failure);
		}
		for (std::size_t i = 0; i < thread_count; ++i)
			if (!results[i].failure.empty())
				RC_FAIL("thread " + std::to_string(i) + ", " + results[i].failure);

		// The threads are gone; their handed-off pages are all that is left of them (in mode 2, in the orphanage).
		std::size_t handed_off = 0;
		for (const auto& r : results)
			handed_off += r.handed_off.size();
#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY == 2
		const auto& orphanage = member_thunk::detail::orphanage<member_thunk::detail::os::native>::instance();
		RC_ASSERT(orphanage.is_valid());
		RC_ASSERT(orphanage.statistics().live_pages == handed_off);
		RC_ASSERT(member_thunk::detail::default_heap().statistics().live_pages == 1u); // the shared page
#else
		RC_ASSERT(member_thunk::detail::default_heap().statistics().live_pages == handed_off + 1);
#endif
		// They still work, can still be sealed, and die here.
		for (auto& r : results)
			for (auto& p : r.handed_off)
			{
				RC_ASSERT(p.page.size() == p.model.thunks.size());
				RC_ASSERT(p.page.executable() == p.model.executable);
				p.page.mark_executable();
				check_all_calls(p.model.thunks, p.thunks, final_args);
				if (!p.thunks.empty())
					RC_ASSERT(test::protection_of(reinterpret_cast<const void*>(p.thunks.front())) ==
					          std::string("r-x"));
			}
		check_all_calls(shared.model, shared.thunks, final_args);
		RC_ASSERT(test::writable_executable_mappings().empty());
		for (auto& r : results)
			r.handed_off.clear();
		shared_handle.reset();
		RC_ASSERT(test::writable_executable_mappings().empty());

		RC_ASSERT(member_thunk::detail::default_heap().is_valid());
		RC_ASSERT(member_thunk::detail::default_heap().statistics().live_pages == 0u);
		member_thunk::compact();
		RC_ASSERT(member_thunk::detail::default_heap().statistics().regions == 0u);
#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY == 2
		// The orphanage releases a region with its last page: nothing is left of the threads' heaps.
		RC_ASSERT(orphanage.is_valid());
		RC_ASSERT(orphanage.statistics().live_pages == 0u);
		RC_ASSERT(orphanage.statistics().regions == 0u);
#endif
	});
}
