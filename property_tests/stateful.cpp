// Stateful property: random sequences of page operations (allocate, make thunks of every form and signature of the
// family, seal, call, destroy, move, move-assign, compact) run against a real heap and a model of the live pages.
// After every command: the heap's validity check passes, the heap's statistics and every page's observers agree with
// the model, no mapping of the process is writable and executable, and every page with thunks has the protection
// the model says (read-write before sealing, read-execute after).
//
// One source, one executable per heap (see CMakeLists.txt):
//   PROPERTY_USER_HEAP undefined  the default heap, in the MEMBER_THUNK_DEFAULT_HEAP_SAFETY mode it was built with
//   PROPERTY_USER_HEAP=1          a member_thunk::heap<std::mutex>
//   PROPERTY_USER_HEAP=2          a member_thunk::heap<member_thunk::slim_lock>
#include <member_thunk/member_thunk.hpp>

#include "family.hpp"
#include "support/maps.hpp"
#include "support/revoked.hpp"

#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace
{
#if defined(PROPERTY_USER_HEAP)
#if PROPERTY_USER_HEAP == 1
	using heap_lock = std::mutex;
	constexpr const char* heap_name = "heap<std::mutex>";
#else
	using heap_lock = member_thunk::slim_lock;
	constexpr const char* heap_name = "heap<slim_lock>";
#endif

	/// A user heap, created for each test case.
	class heap_access
	{
	public:
		[[nodiscard]] member_thunk::page allocate_page() { return heap_.allocate_page(); }
		void compact() { heap_.compact(); }
		[[nodiscard]] bool is_valid() const { return heap_.is_valid(); }
		[[nodiscard]] member_thunk::heap_statistics statistics() const { return heap_.statistics(); }

	private:
		member_thunk::heap<heap_lock> heap_;
	};
#else
#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY == 3
	constexpr const char* heap_name = "default heap, safety 3";
#elif MEMBER_THUNK_DEFAULT_HEAP_SAFETY == 2
	constexpr const char* heap_name = "default heap, safety 2";
#else
	constexpr const char* heap_name = "default heap, safety 1";
#endif

	/// The default heap, through the public free functions (shared by every test case).
	class heap_access
	{
	public:
		[[nodiscard]] member_thunk::page allocate_page() { return member_thunk::allocate_page(); }
		void compact() { member_thunk::compact(); }
		[[nodiscard]] bool is_valid() const { return member_thunk::detail::default_heap().is_valid(); }
		[[nodiscard]] member_thunk::heap_statistics statistics() const
		{
			return member_thunk::detail::default_heap().statistics();
		}
	};
#endif

	using native_os = member_thunk::detail::os::native;
	constexpr std::size_t max_pages = 40; // more than two regions' worth

	// ---- Model ----------------------------------------------------------------------------------------------------

	using prop::outcome;
	using prop::page_model;
	using prop::thunk_model;

	struct model
	{
		std::vector<page_model> pages;
		long next_object = 1;
		std::size_t capacity = prop::slots_per_page();
	};

	void add_thunk(model& m, page_model& p, std::size_t signature, prop::form how)
	{
		prop::add_thunk(p, signature, how, m.next_object++);
	}

	// ---- System under test ----------------------------------------------------------------------------------------

	struct live_page
	{
		member_thunk::page page;
		std::vector<std::uintptr_t> thunks; // entry addresses, in the order the model lists them
	};

	// Members are destroyed in reverse order: pages first, then the objects they point to, then the heap.
	struct system_under_test
	{
		heap_access heap;
		prop::object_store objects;
		std::vector<live_page> pages;
	};

	// ---- Checks ---------------------------------------------------------------------------------------------------

	/// Calls `f` and requires that it throws E.
	template<class E, class F>
	void require_throws(F&& f, const char* expected)
	{
		std::string got = "nothing";
		try
		{
			f();
		}
		catch (const E&)
		{
			return;
		}
		catch (const std::exception& e)
		{
			got = e.what();
		}
		RC_FAIL(std::string("expected ") + expected + " to be thrown, got " + got);
	}

	/// What must hold after every command.
	void verify(const model& m, system_under_test& sut)
	{
		RC_ASSERT(sut.heap.is_valid());
		const auto maps = test::read_maps();
		if (const auto wx = test::writable_executable_in(maps); !wx.empty())
			RC_FAIL("a mapping is writable and executable: " + test::describe(wx.front()));

		RC_ASSERT(sut.pages.size() == m.pages.size());
		const auto stats = sut.heap.statistics();
		const std::size_t page_size = native_os::page_size();
		RC_ASSERT(stats.live_pages == m.pages.size());
		RC_ASSERT(stats.reserved_bytes == stats.regions * native_os::region_size());
		RC_ASSERT(stats.committed_bytes >= stats.live_pages * page_size);
		RC_ASSERT(stats.committed_bytes <= stats.reserved_bytes);
		RC_ASSERT(stats.regions * (native_os::region_size() / page_size) >= stats.live_pages);

		std::set<std::uintptr_t> page_addresses;
		for (std::size_t i = 0; i < m.pages.size(); ++i)
		{
			const page_model& expected = m.pages[i];
			const live_page& actual = sut.pages[i];
			RC_ASSERT(actual.page.size() == expected.thunks.size());
			RC_ASSERT(actual.page.capacity() == m.capacity);
			RC_ASSERT(actual.page.executable() == expected.executable);
			RC_ASSERT(actual.page.full() == (expected.slots == m.capacity));
			RC_ASSERT(actual.thunks.size() == expected.thunks.size());
			if (actual.thunks.empty())
				continue;
			// Code slots fill the page from its start, one slot per thunk.
			const std::uintptr_t first = actual.thunks.front();
			RC_ASSERT(first % page_size == 0);
			for (std::size_t k = 0; k < actual.thunks.size(); ++k)
				RC_ASSERT(actual.thunks[k] == first + k * member_thunk::detail::arch::native_encoder::slot_size);
			RC_ASSERT(page_addresses.insert(first).second);
			RC_ASSERT(test::protection_in(maps, reinterpret_cast<const void*>(first)) ==
			          (expected.executable ? "r-x" : "rw-"));
		}
	}

	/// A revoked page must stop being executable at once (decommitted, or cached read-write and all traps): a stale
	/// call faults instead of running.
	void require_revoked(std::optional<std::uintptr_t> address)
	{
		if (address)
			RC_ASSERT(test::is_revoked(reinterpret_cast<const void*>(*address)));
	}

	[[nodiscard]] std::optional<std::uintptr_t> address_of(const live_page& p)
	{
		if (p.thunks.empty())
			return std::nullopt;
		return p.thunks.front();
	}

	[[nodiscard]] std::size_t pick(std::size_t count)
	{
		RC_PRE(count > 0);
		return *rc::gen::inRange<std::size_t>(0, count);
	}

	// ---- Commands -------------------------------------------------------------------------------------------------

	// Every command's run() is followed by verify() of the state it leads to (see the property below).
	using command = rc::state::Command<model, system_under_test>;

	struct allocate_page final : command
	{
		void checkPreconditions(const model& s0) const override { RC_PRE(s0.pages.size() < max_pages); }
		void apply(model& s0) const override { s0.pages.emplace_back(); }
		void run(const model&, system_under_test& sut) const override
		{
			sut.pages.push_back({sut.heap.allocate_page(), {}});
		}
		void show(std::ostream& os) const override { os << "allocate_page"; }
	};

	/// Allocates several pages at once, so that sequences reach more than one region.
	struct allocate_pages final : command
	{
		explicit allocate_pages(const model& s0) :
		    count(*rc::gen::inRange<std::size_t>(1, std::max<std::size_t>(2, max_pages - s0.pages.size() + 1)))
		{
		}

		void checkPreconditions(const model& s0) const override { RC_PRE(s0.pages.size() + count <= max_pages); }
		void apply(model& s0) const override { s0.pages.resize(s0.pages.size() + count); }
		void run(const model&, system_under_test& sut) const override
		{
			for (std::size_t i = 0; i < count; ++i)
				sut.pages.push_back({sut.heap.allocate_page(), {}});
		}
		void show(std::ostream& os) const override { os << "allocate_pages(" << count << ")"; }

		std::size_t count;
	};

	/// Makes one thunk on any page; the model says whether it fits, or the page is sealed.
	struct make_thunk final : command
	{
		explicit make_thunk(const model& s0) :
		    page(pick(s0.pages.size())), signature(*prop::signature_gen()), how(*prop::form_gen())
		{
		}

		void checkPreconditions(const model& s0) const override { RC_PRE(page < s0.pages.size()); }

		void apply(model& s0) const override
		{
			page_model& p = s0.pages[page];
			if (prop::predict(p, how) == outcome::made)
				add_thunk(s0, p, signature, how);
		}

		void run(const model& s0, system_under_test& sut) const override
		{
			live_page& p = sut.pages[page];
			switch (prop::predict(s0.pages[page], how))
			{
			case outcome::made:
				p.thunks.push_back(prop::make_thunk(p.page, signature, how, s0.next_object, sut.objects));
				break;
			case outcome::page_full:
				require_throws<member_thunk::page_full>(
				    [&] { static_cast<void>(prop::make_thunk(p.page, signature, how, -1, sut.objects)); }, "page_full");
				break;
			case outcome::page_executable:
				require_throws<member_thunk::page_executable>(
				    [&] { static_cast<void>(prop::make_thunk(p.page, signature, how, -1, sut.objects)); },
				    "page_executable");
				break;
			}
		}

		void show(std::ostream& os) const override
		{
			os << "make_thunk(page " << page << ", " << prop::signature_names.at(signature) << ", " << prop::name(how)
			   << ")";
		}

		std::size_t page;
		std::size_t signature;
		prop::form how;
	};

	/// Makes thunks from a repeating pattern of signatures and forms until the next one does not fit, then requires
	/// that one to throw page_full (or the first to throw page_executable on a sealed page).
	struct fill_page final : command
	{
		explicit fill_page(const model& s0) :
		    page(pick(s0.pages.size())),
		    pattern(*rc::gen::nonEmpty(rc::gen::container<std::vector<std::pair<std::size_t, prop::form>>>(
		        rc::gen::pair(prop::signature_gen(), prop::form_gen()))))
		{
		}

		void checkPreconditions(const model& s0) const override { RC_PRE(page < s0.pages.size()); }

		void apply(model& s0) const override
		{
			page_model& p = s0.pages[page];
			for (std::size_t k = 0; prop::predict(p, pattern[k % pattern.size()].second) == outcome::made; ++k)
				add_thunk(s0, p, pattern[k % pattern.size()].first, pattern[k % pattern.size()].second);
		}

		void run(const model& s0, system_under_test& sut) const override
		{
			model m = s0;
			page_model& expected = m.pages[page];
			live_page& p = sut.pages[page];
			std::size_t k = 0;
			for (; prop::predict(expected, pattern[k % pattern.size()].second) == outcome::made; ++k)
			{
				const auto [signature, how] = pattern[k % pattern.size()];
				p.thunks.push_back(prop::make_thunk(p.page, signature, how, m.next_object, sut.objects));
				add_thunk(m, expected, signature, how);
			}
			const auto& next = pattern[k % pattern.size()];
			const auto make = [&] {
				static_cast<void>(prop::make_thunk(p.page, next.first, next.second, -1, sut.objects));
			};
			if (expected.executable)
				require_throws<member_thunk::page_executable>(make, "page_executable");
			else
				require_throws<member_thunk::page_full>(make, "page_full");
		}

		void show(std::ostream& os) const override
		{
			os << "fill_page(page " << page << ", pattern";
			for (const auto& [signature, how] : pattern)
				os << " {" << prop::signature_names.at(signature) << ", " << prop::name(how) << "}";
			os << ")";
		}

		std::size_t page;
		std::vector<std::pair<std::size_t, prop::form>> pattern;
	};

	struct mark_executable final : command
	{
		explicit mark_executable(const model& s0) : page(pick(s0.pages.size())), twice(*rc::gen::arbitrary<bool>()) {}

		void checkPreconditions(const model& s0) const override { RC_PRE(page < s0.pages.size()); }
		void apply(model& s0) const override { s0.pages[page].executable = true; }

		void run(const model&, system_under_test& sut) const override
		{
			sut.pages[page].page.mark_executable();
			if (twice) // a no-op on a sealed page
				sut.pages[page].page.mark_executable();
		}

		void show(std::ostream& os) const override
		{
			os << "mark_executable(page " << page << (twice ? ", twice)" : ")");
		}

		std::size_t page;
		bool twice;
	};

	void check_call(const thunk_model& t, std::uintptr_t address, const prop::argument_values& args)
	{
		const double actual = prop::invoke(t.signature, address, args);
		const double expected = prop::expected(t.signature, t.how, t.object, args);
		RC_ASSERT(actual == expected);
	}

	/// Calls one thunk of a sealed page.
	struct call_thunk final : command
	{
		explicit call_thunk(const model& s0) : args(*prop::arguments_gen())
		{
			std::vector<std::pair<std::size_t, std::size_t>> callable;
			for (std::size_t p = 0; p < s0.pages.size(); ++p)
				if (s0.pages[p].executable)
					for (std::size_t t = 0; t < s0.pages[p].thunks.size(); ++t)
						callable.emplace_back(p, t);
			std::tie(page, thunk) = callable[pick(callable.size())];
		}

		void checkPreconditions(const model& s0) const override
		{
			RC_PRE(page < s0.pages.size());
			RC_PRE(s0.pages[page].executable);
			RC_PRE(thunk < s0.pages[page].thunks.size());
		}

		void run(const model& s0, system_under_test& sut) const override
		{
			check_call(s0.pages[page].thunks[thunk], sut.pages[page].thunks[thunk], args);
		}

		void show(std::ostream& os) const override
		{
			os << "call_thunk(page " << page << ", thunk " << thunk << ", args ";
			prop::show_arguments(args, os);
			os << ")";
		}

		std::size_t page = 0;
		std::size_t thunk = 0;
		prop::argument_values args;
	};

	/// Calls every thunk of every sealed page.
	struct call_all final : command
	{
		call_all() : args(*prop::arguments_gen()) {}

		void run(const model& s0, system_under_test& sut) const override
		{
			for (std::size_t p = 0; p < s0.pages.size(); ++p)
				if (s0.pages[p].executable)
					for (std::size_t t = 0; t < s0.pages[p].thunks.size(); ++t)
						check_call(s0.pages[p].thunks[t], sut.pages[p].thunks[t], args);
		}

		void show(std::ostream& os) const override
		{
			os << "call_all(args ";
			prop::show_arguments(args, os);
			os << ")";
		}

		prop::argument_values args;
	};

	/// Destroys a page (its destructor, not an assignment) and checks it is revoked at once.
	struct destroy_page final : command
	{
		explicit destroy_page(const model& s0) : page(pick(s0.pages.size())) {}

		void checkPreconditions(const model& s0) const override { RC_PRE(page < s0.pages.size()); }
		void apply(model& s0) const override { s0.pages.erase(s0.pages.begin() + static_cast<std::ptrdiff_t>(page)); }

		void run(const model&, system_under_test& sut) const override
		{
			const auto address = address_of(sut.pages[page]);
			{
				const live_page doomed = std::move(sut.pages[page]);
				sut.pages.erase(sut.pages.begin() + static_cast<std::ptrdiff_t>(page));
			}
			require_revoked(address);
		}

		void show(std::ostream& os) const override { os << "destroy_page(page " << page << ")"; }

		std::size_t page;
	};

	/// Move-constructs a page into a new handle at the end of the list; the moved-from handle is discarded.
	struct move_page final : command
	{
		explicit move_page(const model& s0) : page(pick(s0.pages.size())) {}

		void checkPreconditions(const model& s0) const override { RC_PRE(page < s0.pages.size()); }
		void apply(model& s0) const override
		{
			page_model moved = std::move(s0.pages[page]);
			s0.pages.erase(s0.pages.begin() + static_cast<std::ptrdiff_t>(page));
			s0.pages.push_back(std::move(moved));
		}

		void run(const model&, system_under_test& sut) const override
		{
			live_page moved{member_thunk::page(std::move(sut.pages[page].page)), std::move(sut.pages[page].thunks)};
			sut.pages.erase(sut.pages.begin() + static_cast<std::ptrdiff_t>(page));
			sut.pages.push_back(std::move(moved));
		}

		void show(std::ostream& os) const override { os << "move_page(page " << page << " to the end)"; }

		std::size_t page;
	};

	/// Move-assigns one page handle over another (which revokes the page it held); `from == to` is a self-move.
	struct move_assign_page final : command
	{
		explicit move_assign_page(const model& s0) : from(pick(s0.pages.size())), to(pick(s0.pages.size())) {}

		void checkPreconditions(const model& s0) const override
		{
			RC_PRE(from < s0.pages.size());
			RC_PRE(to < s0.pages.size());
		}

		void apply(model& s0) const override
		{
			if (from == to)
				return;
			s0.pages[to] = std::move(s0.pages[from]);
			s0.pages.erase(s0.pages.begin() + static_cast<std::ptrdiff_t>(from));
		}

		void run(const model&, system_under_test& sut) const override
		{
			if (from == to)
			{
				member_thunk::page& p = sut.pages[from].page;
				member_thunk::page& same = p;
				p = std::move(same);
				return;
			}
			const auto revoked = address_of(sut.pages[to]);
			sut.pages[to].page = std::move(sut.pages[from].page);
			sut.pages[to].thunks = std::move(sut.pages[from].thunks);
			sut.pages.erase(sut.pages.begin() + static_cast<std::ptrdiff_t>(from));
			require_revoked(revoked);
		}

		void show(std::ostream& os) const override { os << "move_assign_page(page " << from << " over " << to << ")"; }

		std::size_t from;
		std::size_t to;
	};

	struct compact final : command
	{
		void run(const model& s0, system_under_test& sut) const override
		{
			sut.heap.compact();
			// Only regions with a live page remain.
			const auto stats = sut.heap.statistics();
			RC_ASSERT(stats.regions <= s0.pages.size());
		}

		void show(std::ostream& os) const override { os << "compact"; }
	};

} // namespace

TEST_CASE("property: random page operations agree with the model", "[property][stateful]")
{
	INFO("heap: " << heap_name);
	rc::prop(std::string("stateful, ") + heap_name, [] {
		system_under_test sut;
		RC_ASSERT(sut.heap.statistics().live_pages == 0u);
		// Weights: a command listed twice is generated twice as often.
		const auto commands = *rc::state::gen::commands(
		    model{}, rc::state::gen::execOneOfWithArgs<allocate_page, allocate_pages, make_thunk, make_thunk,
		                                               make_thunk, fill_page, mark_executable, mark_executable,
		                                               call_thunk, call_thunk, call_thunk, call_all, destroy_page,
		                                               move_page, move_assign_page, compact>());
		// What rc::state::check() does (rc::state::runAll), plus verify() after every command.
		model state;
		for (const auto& c : commands)
		{
			c->checkPreconditions(state);
			c->run(state, sut);
			c->apply(state);
			verify(state, sut);
		}
		// Every page gone: nothing is live, and compact() returns every region.
		sut.pages.clear();
		RC_ASSERT(sut.heap.statistics().live_pages == 0u);
		sut.heap.compact();
		RC_ASSERT(sut.heap.statistics().regions == 0u);
		RC_ASSERT(sut.heap.is_valid());
		RC_ASSERT(test::writable_executable_mappings().empty());
	});
}
