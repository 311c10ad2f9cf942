// Property tests: the operations of the sequence-driven properties (concurrent, fault injection): one operation type,
// its generator (each property gives its own weights) and how RapidCheck shows it, and live_set, which runs the
// operations on pages and unique thunks that those properties share and checks them against the model. Every
// operation that makes a thunk makes a closure instead when its signature is a closure's (is_closure), and shows as
// make_closure or make_unique_closure. Each property keeps its own operations (the concurrent one: the shared thunks
// and the hand-offs; fault injection: injected failures and W^X refusals) and its own checks around them.
#pragma once

#include "checks.hpp"
#include "family.hpp"
#include "model.hpp"
#include "unique.hpp"

#include "support/failing_os.hpp"
#include "support/maps.hpp"

#include <member_thunk/detail/slot_queue.hpp>
#include <member_thunk/exception.hpp>
#include <member_thunk/page.hpp>

#include <rapidcheck.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace prop
{
	enum class op_kind : std::uint8_t
	{
		allocate,
		make_thunk,
		fill,
		mark_executable,
		call,
		destroy,
		destroy_all,
		move,
		move_assign,
		compact,
		make_unique,
		call_unique,
		destroy_unique,
		move_unique,
		move_assign_unique,
		call_shared,      // concurrent: a thunk made before the threads started
		hand_off,         // concurrent: a page moved to the main thread
		hand_off_unique,  // concurrent: a unique thunk moved to the main thread
		inject,           // fault injection: an OS call fails
		refuse_execution, // fault injection: a W^X policy comes into force (or is lifted)
		count
	};

	/// One operation. Indices are taken modulo what exists when it runs.
	struct op
	{
		op_kind what = op_kind::allocate;
		std::size_t a = 0;
		std::size_t b = 0;
		std::size_t signature = 0;
		form how = form::compile_time_member;
		argument_values args{};
		test::os_call call = test::os_call::reserve; // inject: which call fails,
		int nth = 1;                                 // the how-many-th from now,
		int error = ENOMEM;                          // with which errno
		bool on = true;                              // refuse_execution: in force, or lifted
	};

	/// An allocation takes one to four pages, so that sequences reach more than one region.
	[[nodiscard]] inline std::size_t pages_to_allocate(const op& o)
	{
		return 1 + o.b % 4;
	}

	/// destroy_unique: by reset() (then the empty handle's destructor) or by the destructor.
	[[nodiscard]] inline bool by_reset(const op& o)
	{
		return o.b % 2 != 0;
	}

	[[nodiscard]] inline const char* name(op_kind k)
	{
		constexpr const char* names[] = {"allocate",
		                                 "make_thunk",
		                                 "fill",
		                                 "mark_executable",
		                                 "call",
		                                 "destroy",
		                                 "destroy_all",
		                                 "move",
		                                 "move_assign",
		                                 "compact",
		                                 "make_unique",
		                                 "call_unique",
		                                 "destroy_unique",
		                                 "move_unique",
		                                 "move_assign_unique",
		                                 "call_shared",
		                                 "hand_off",
		                                 "hand_off_unique",
		                                 "inject",
		                                 "refuse_execution"};
		static_assert(std::size(names) == static_cast<std::size_t>(op_kind::count));
		return k < op_kind::count ? names[static_cast<std::size_t>(k)] : "?";
	}

	inline void showValue(const op& o, std::ostream& os)
	{
		// A closure's operations show as make_closure and make_unique_closure.
		if (o.what == op_kind::make_thunk && is_closure(o.signature))
			os << "make_closure";
		else if (o.what == op_kind::make_unique && is_closure(o.signature))
			os << "make_unique_closure";
		else
			os << name(o.what);
		switch (o.what)
		{
		case op_kind::allocate:
			os << "(" << pages_to_allocate(o) << ")";
			break;
		case op_kind::make_thunk:
			os << "(" << o.a << ", " << signature_names.at(o.signature) << ", " << name(o.how) << ")";
			break;
		case op_kind::fill:
			os << "(" << o.a << ", ";
			show_signature(o.signature, os);
			os << ", " << name(o.how) << ")";
			break;
		case op_kind::make_unique:
			os << "(" << signature_names.at(o.signature) << ", " << name(o.how) << ")";
			break;
		case op_kind::call:
		case op_kind::call_unique:
		case op_kind::call_shared:
			os << "(" << o.a << ", ";
			show_arguments(o.args, os);
			os << ")";
			break;
		case op_kind::destroy_unique:
			os << "(" << o.a << (by_reset(o) ? ", by reset)" : ")");
			break;
		case op_kind::move_assign:
		case op_kind::move_assign_unique:
			os << "(" << o.a << " over " << o.b << ")";
			break;
		case op_kind::mark_executable:
		case op_kind::destroy:
		case op_kind::move:
		case op_kind::move_unique:
		case op_kind::hand_off:
		case op_kind::hand_off_unique:
			os << "(" << o.a << ")";
			break;
		case op_kind::inject:
			os << "(" << test::call_name(o.call) << " fails at call " << o.nth << " from now, errno " << o.error << ")";
			break;
		case op_kind::refuse_execution:
			os << (o.on ? "(on)" : "(lifted)");
			break;
		default:
			break;
		}
	}

	/// How often each operation is generated, relative to the others; operations not listed never are.
	using op_weights = std::vector<std::pair<std::size_t, op_kind>>;

	[[nodiscard]] inline rc::Gen<op> op_gen(op_weights weights)
	{
		std::size_t total = 0;
		for (const auto& [weight, kind] : weights)
			total += weight;
		return rc::gen::exec([weights = std::move(weights), total] {
			op o;
			// As rc::gen::weightedElement does (which takes only an initializer list): shrinks towards the first.
			std::size_t pick = *rc::gen::inRange<std::size_t>(0, total);
			for (const auto& [weight, kind] : weights)
			{
				if (pick < weight)
				{
					o.what = kind;
					break;
				}
				pick -= weight;
			}
			o.a = *rc::gen::inRange<std::size_t>(0, 64);
			o.b = *rc::gen::inRange<std::size_t>(0, 64);
			switch (o.what)
			{
			case op_kind::make_thunk:
			case op_kind::fill:
			case op_kind::make_unique:
				o.signature = *signature_gen();
				o.how = *form_gen();
				break;
			case op_kind::call:
			case op_kind::call_unique:
			case op_kind::call_shared:
				o.args = *arguments_gen();
				break;
			case op_kind::inject:
				o.call = static_cast<test::os_call>(
				    *rc::gen::inRange<std::size_t>(0, static_cast<std::size_t>(test::os_call::count)));
				o.nth = *rc::gen::inRange(1, 5);
				o.error = *rc::gen::element(ENOMEM, EACCES, EPERM, EAGAIN, EINVAL, EFAULT);
				break;
			case op_kind::refuse_execution:
				o.on = *rc::gen::weightedElement<bool>({{3, true}, {1, false}});
				break;
			default:
				break;
			}
			return o;
		});
	}

	// ---- What a sequence holds ------------------------------------------------------------------------------------

	struct live_page
	{
		member_thunk::page page;
		page_model model;
		std::vector<std::uintptr_t> thunks;
	};

	struct live_unique
	{
		any_unique thunk;
		thunk_model model;
		std::uintptr_t address = 0; // its entry, as made
		std::byte* slot = nullptr;  // its data slot, as made
	};

	/// Where a destroyed page was, to check that it was revoked.
	struct freed_page
	{
		page_kind kind = page_kind::runtime_code;
		const std::byte* address = nullptr;
	};

	/// A unique thunk an operation destroyed: its data slot (null if there was none), and what went wrong.
	struct freed_unique
	{
		std::byte* slot = nullptr;
		failure problem;
	};

	/// What an operation of a live_set did: what went wrong, and what it destroyed (for the property's own checks).
	struct step
	{
		bool ran = true;
		failure problem;
		std::optional<freed_page> page;
		freed_unique unique;
	};

	/// The pages and unique thunks of one sequence, with their models: runs the operations both properties share,
	/// each checked against the model (a failure is returned, since threads cannot use RapidCheck's assertions).
	/// Operations that the heap or the OS may refuse throw what the library throws, with the model unchanged.
	class live_set
	{
	public:
		/// `max_pages`: how many pages an allocation may take the set to.
		live_set(object_store& objects, long first_object, std::size_t max_pages) :
		    objects_(objects), next_object_(first_object), max_pages_(max_pages)
		{
		}

		/// Runs `o` if it is an operation of the set (the heap's: allocate_page(), compact() and make_unique_thunk,
		/// as a heap<Lock> has them): its outcome, with `ran` false for an operation the set does not know.
		template<class Heap>
		step run(Heap& heap, const op& o)
		{
			step result;
			switch (o.what)
			{
			case op_kind::allocate:
				for (std::size_t n = pages_to_allocate(o); n != 0 && pages_.size() < max_pages_; --n)
					add_page(heap.allocate_page());
				break;
			case op_kind::make_thunk:
				result.problem = make_thunk(o);
				break;
			case op_kind::fill:
				result.problem = fill(o);
				break;
			case op_kind::mark_executable:
				mark_executable(o.a);
				break;
			case op_kind::call:
				result.problem = call(o);
				break;
			case op_kind::destroy:
				result.page = destroy(o.a);
				break;
			case op_kind::move:
				move(o.a);
				break;
			case op_kind::move_assign:
				result.page = move_assign(o.a, o.b);
				break;
			case op_kind::compact:
				heap.compact();
				break;
			case op_kind::make_unique:
				result.problem = make_unique(heap, o);
				break;
			case op_kind::call_unique:
				result.problem = call_unique(o);
				break;
			case op_kind::destroy_unique:
				result.unique = destroy_unique(o);
				break;
			case op_kind::move_unique:
				result.problem = move_unique(o.a);
				break;
			case op_kind::move_assign_unique:
				result.unique = move_assign_unique(o.a, o.b);
				break;
			default:
				result.ran = false;
				break;
			}
			if (!result.problem)
				result.problem = result.unique.problem;
			return result;
		}

		[[nodiscard]] const std::vector<live_page>& pages() const noexcept { return pages_; }
		[[nodiscard]] const std::vector<live_unique>& uniques() const noexcept { return uniques_; }

		/// A page the heap just handed out, of the kind it says.
		void add_page(member_thunk::page p)
		{
			page_model m;
			m.kind = p.prebuilt() ? page_kind::prebuilt : page_kind::runtime_code;
			pages_.push_back({std::move(p), m, {}});
		}

		/// A thunk or closure on page `o.a`: made where the model says it fits, else page_full or page_executable
		/// (make_on_page).
		failure make_thunk(const op& o)
		{
			bool made = false;
			return make_thunk(o, made);
		}

		/// Thunks or closures like `o` until the page is full or sealed: the last attempt must throw.
		failure fill(const op& o)
		{
			for (bool made = true; made;)
				if (auto problem = make_thunk(o, made))
					return problem;
			return std::nullopt;
		}

		/// Seals page `a`. Throws os_error if the OS refuses; the model then follows what the page says it is.
		void mark_executable(std::size_t a)
		{
			if (pages_.empty())
				return;
			live_page& p = pages_[a % pages_.size()];
			try
			{
				p.page.mark_executable();
			}
			catch (...)
			{
				p.model.executable = p.page.executable();
				throw;
			}
			p.model.executable = true;
		}

		/// Calls one thunk of a sealed page.
		[[nodiscard]] failure call(const op& o) const
		{
			std::vector<std::pair<std::size_t, std::size_t>> callable;
			for (std::size_t p = 0; p < pages_.size(); ++p)
				if (pages_[p].model.executable)
					for (std::size_t t = 0; t < pages_[p].thunks.size(); ++t)
						callable.emplace_back(p, t);
			if (callable.empty())
				return std::nullopt;
			const auto [p, t] = callable[o.a % callable.size()];
			return call_failure(pages_[p].model.thunks[t], pages_[p].thunks[t], o.args);
		}

		/// Calls every thunk of every sealed page and every unique thunk.
		[[nodiscard]] failure call_all(const argument_values& args) const
		{
			for (const auto& p : pages_)
				if (p.model.executable)
					for (std::size_t t = 0; t < p.thunks.size(); ++t)
						if (auto problem = call_failure(p.model.thunks[t], p.thunks[t], args))
							return problem;
			for (const auto& u : uniques_)
				if (auto problem = call_failure(u.model, u.address, args))
					return problem;
			return std::nullopt;
		}

		/// Destroys page `a` (its destructor, not an assignment); returns where it was.
		std::optional<freed_page> destroy(std::size_t a)
		{
			if (pages_.empty())
				return std::nullopt;
			const live_page doomed = take_page(a);
			return freed_page{doomed.model.kind, member_thunk::detail::page_access::address_of(doomed.page)};
		}

		/// Move-constructs page `a` into a new handle at the end.
		void move(std::size_t a)
		{
			if (pages_.empty())
				return;
			const std::size_t i = a % pages_.size();
			live_page moved{member_thunk::page(std::move(pages_[i].page)), std::move(pages_[i].model),
			                std::move(pages_[i].thunks)};
			erase(pages_, i);
			pages_.push_back(std::move(moved));
		}

		/// Move-assigns page `a` over page `b` (two different pages); returns where the page `b` held was.
		std::optional<freed_page> move_assign(std::size_t a, std::size_t b)
		{
			if (pages_.size() < 2 || a % pages_.size() == b % pages_.size())
				return std::nullopt;
			const std::size_t from = a % pages_.size();
			const std::size_t to = b % pages_.size();
			const freed_page freed{pages_[to].model.kind,
			                       member_thunk::detail::page_access::address_of(pages_[to].page)};
			pages_[to].page = std::move(pages_[from].page); // revokes the page `to` held
			pages_[to].model = std::move(pages_[from].model);
			pages_[to].thunks = std::move(pages_[from].thunks);
			erase(pages_, from);
			return freed;
		}

		/// Takes page `a` out of the set (there must be one).
		[[nodiscard]] live_page take_page(std::size_t a) { return take(pages_, a); }

		/// Makes a unique thunk with `heap` (see prop::make_unique); it must not take the slot of one of the last
		/// `quarantine` unique thunks this set destroyed.
		template<class Heap>
		failure make_unique(Heap& heap, const op& o)
		{
			const long id = next_object_++;
			any_unique made = prop::make_unique(heap, o.signature, o.how, id, objects_);
			std::byte* const slot = slot_of(made);
			const std::uintptr_t address = address_of(made);
			uniques_.push_back({std::move(made), {o.signature, o.how, id}, address, slot});
			if (std::find(freed_slots_.begin(), freed_slots_.end(), slot) != freed_slots_.end())
				return "a new unique thunk took the slot of one destroyed fewer than " + std::to_string(quarantine) +
				       " unique thunks ago";
			return std::nullopt;
		}

		[[nodiscard]] failure call_unique(const op& o) const
		{
			if (uniques_.empty())
				return std::nullopt;
			const live_unique& u = uniques_[o.a % uniques_.size()];
			return call_failure(u.model, u.address, o.args);
		}

		/// Destroys unique thunk `o.a` (by reset() or its destructor).
		freed_unique destroy_unique(const op& o)
		{
			if (uniques_.empty())
				return {};
			const std::size_t i = o.a % uniques_.size();
			freed_unique result{uniques_[i].slot, std::nullopt};
			if (by_reset(o))
			{
				reset(uniques_[i].thunk);
				if (holds_thunk(uniques_[i].thunk) || address_of(uniques_[i].thunk) != 0)
					result.problem = "a unique thunk still holds a thunk after reset()";
			}
			erase(uniques_, i);
			freed(result.slot);
			return result;
		}

		/// Move-constructs unique thunk `a` into a new handle at the end; the moved-from one must be empty.
		failure move_unique(std::size_t a)
		{
			if (uniques_.empty())
				return std::nullopt;
			const std::size_t i = a % uniques_.size();
			live_unique moved{any_unique(std::move(uniques_[i].thunk)), uniques_[i].model, uniques_[i].address,
			                  uniques_[i].slot};
			const bool emptied = !holds_thunk(uniques_[i].thunk);
			erase(uniques_, i);
			uniques_.push_back(std::move(moved));
			return emptied ? std::nullopt : failure("a moved-from unique thunk still holds a thunk");
		}

		/// Move-assigns unique thunk `a` over `b` (`a == b`: a self-move, which changes nothing), which destroys the
		/// one `b` held.
		freed_unique move_assign_unique(std::size_t a, std::size_t b)
		{
			if (uniques_.empty())
				return {};
			const std::size_t from = a % uniques_.size();
			const std::size_t to = b % uniques_.size();
			if (from == to)
			{
				any_unique& u = uniques_[from].thunk;
				any_unique& same = u;
				prop::move_assign(u, same);
				return {};
			}
			freed_unique result{uniques_[to].slot, std::nullopt};
			prop::move_assign(uniques_[to].thunk, uniques_[from].thunk);
			if (holds_thunk(uniques_[from].thunk))
				result.problem = "a unique thunk moved from by assignment still holds a thunk";
			uniques_[to].model = uniques_[from].model;
			uniques_[to].address = uniques_[from].address;
			uniques_[to].slot = uniques_[from].slot;
			erase(uniques_, from);
			freed(result.slot);
			return result;
		}

		/// Takes unique thunk `a` out of the set (there must be one).
		[[nodiscard]] live_unique take_unique(std::size_t a) { return take(uniques_, a); }

		/// Destroys everything, pages first.
		void clear() noexcept
		{
			pages_.clear();
			while (!uniques_.empty())
			{
				std::byte* const slot = uniques_.back().slot;
				uniques_.pop_back();
				freed(slot);
			}
		}

		/// What must hold of every page and unique thunk, in the snapshot `maps`.
		[[nodiscard]] failure check(const std::vector<test::mapping>& maps) const
		{
			for (const auto& p : pages_)
				if (auto problem = check_page(maps, p.page, p.model, p.thunks))
					return problem;
			for (const auto& u : uniques_)
				if (auto problem = check_unique(maps, u.thunk, u.address, u.slot))
					return problem;
			return std::nullopt;
		}

		static constexpr std::size_t quarantine = member_thunk::detail::slot_queue::quarantine;

	private:
		failure make_thunk(const op& o, bool& made)
		{
			made = false;
			if (pages_.empty())
				return std::nullopt;
			live_page& p = pages_[o.a % pages_.size()];
			const attempt done = make_on_page(p.page, p.model, o.signature, o.how, next_object_++, objects_);
			if (done.problem)
				return done.problem;
			if (done.address)
			{
				p.thunks.push_back(*done.address);
				made = true;
			}
			return std::nullopt;
		}

		template<class T>
		static void erase(std::vector<T>& items, std::size_t i)
		{
			items.erase(items.begin() + static_cast<std::ptrdiff_t>(i));
		}

		template<class T>
		[[nodiscard]] static T take(std::vector<T>& items, std::size_t a)
		{
			const std::size_t i = a % items.size();
			T taken = std::move(items[i]);
			erase(items, i);
			return taken;
		}

		void freed(const std::byte* slot)
		{
			freed_slots_.push_back(slot);
			if (freed_slots_.size() > quarantine)
				freed_slots_.pop_front();
		}

		object_store& objects_;
		long next_object_;
		std::vector<live_page> pages_;
		std::vector<live_unique> uniques_;
		std::size_t max_pages_;
		std::deque<const std::byte*> freed_slots_; // of the last `quarantine` unique thunks destroyed, newest last
	};
} // namespace prop
