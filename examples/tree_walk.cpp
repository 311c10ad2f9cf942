// Passing lambdas with captures to a C walker whose visitor gets no user data.
//
// The walker's visitor has a first parameter "reserved, always NULL", as many old C APIs do. It carries nothing,
// so a thunk can put the lambda's address there. Without a thunk the lambda would have to be capture-less and
// share its state through globals.
//
// Shown here: pages. The callable form make_thunk<Callback>(callable), the default heap and compact(), and the two
// ways a page refuses a new thunk: once it is sealed (page_executable) and once it runs out of slots (page_full).
// For a single callback, make_unique_thunk needs no page at all (event_logger.cpp).

#include <member_thunk/member_thunk.hpp>

#include <cstdio>
#include <string>
#include <vector>

// --- A stand-in for the C library -----------------------------------------------------------------------------------
extern "C"
{
	struct tree_node
	{
		const char* name;
		const struct tree_node* children;
		int child_count;
	};

	typedef int (*tree_visitor)(void* reserved, const char* name, int depth);

	static int tree_walk_at(const tree_node* node, tree_visitor visit, int depth)
	{
		if (const int stop = visit(nullptr, node->name, depth); stop != 0)
			return stop;
		for (int i = 0; i < node->child_count; ++i)
			if (const int stop = tree_walk_at(&node->children[i], visit, depth + 1); stop != 0)
				return stop;
		return 0;
	}

	// Visits the tree depth-first; stops as soon as the visitor returns non-zero, and returns that value.
	static int tree_walk(const tree_node* root, tree_visitor visit)
	{
		return tree_walk_at(root, visit, 0);
	}
}

namespace
{
	const tree_node lib_children[] = {{"libc.so", nullptr, 0}, {"libm.so", nullptr, 0}};
	const tree_node usr_children[] = {{"bin", nullptr, 0}, {"lib", lib_children, 2}, {"share", nullptr, 0}};
	const tree_node root_children[] = {{"etc", nullptr, 0}, {"usr", usr_children, 3}};
	const tree_node root = {"", root_children, 2};
	constexpr int node_count = 8;
} // namespace

int main()
{
	try
	{
		// The callables come first: a thunk refers to its callable, so the callable must outlive the page.
		std::vector<std::string> stack;
		std::vector<std::string> paths;
		auto collect = [&](const char* name, int depth) {
			stack.resize(static_cast<std::size_t>(depth));
			stack.emplace_back(name);
			std::string path(depth == 0 ? "/" : ""); // the root's name is empty
			for (std::size_t i = 1; i < stack.size(); ++i)
				path += "/" + stack[i];
			std::printf("visit depth %d -> %s\n", depth, path.c_str());
			paths.push_back(path);
			return 0;
		};

		const std::string wanted = "lib";
		int found_at = -1;
		auto find = [&wanted, &found_at](const char* name, int depth) {
			if (wanted != name)
				return 0;
			found_at = depth;
			return 1; // stop the walk
		};

		int failures = 0;
		{
			member_thunk::page page = member_thunk::allocate_page();
			const tree_visitor collect_visitor = page.make_thunk<tree_visitor>(collect);
			const tree_visitor find_visitor = page.make_thunk<tree_visitor>(find);
			page.mark_executable();

			const int walked = tree_walk(&root, collect_visitor);
			const int stopped = tree_walk(&root, find_visitor);
			std::printf("found '%s' at depth %d\n", wanted.c_str(), found_at);

			const std::vector<std::string> expected = {
			    "/", "/etc", "/usr", "/usr/bin", "/usr/lib", "/usr/lib/libc.so", "/usr/lib/libm.so", "/usr/share"};
			if (walked != 0 || paths != expected || stopped != 1 || found_at != 2)
			{
				std::puts("error: the visitors did not see the tree as expected");
				++failures;
			}

			// A sealed page never becomes writable again (W^X), so it takes no more thunks: a visitor thought of
			// late needs a page of its own (or a unique thunk).
			try
			{
				static_cast<void>(page.make_thunk<tree_visitor>(find));
				std::puts("error: a sealed page accepted a new thunk");
				++failures;
			}
			catch (const member_thunk::page_executable& e)
			{
				std::printf("as expected: %s\n", e.what());
			}
		}

		// A page holds capacity() thunks of one slot each; past that make_thunk() throws page_full and the caller
		// takes another page. Here the same small counter is bound over and over to fill a page on purpose.
		int calls = 0;
		auto tally = [&calls](const char*, int) {
			++calls;
			return 0;
		};
		{
			member_thunk::page page = member_thunk::allocate_page();
			std::vector<tree_visitor> visitors;
			try
			{
				for (std::size_t i = 0; i <= page.capacity(); ++i)
					visitors.push_back(page.make_thunk<tree_visitor>(tally));
				std::puts("error: the page never reported that it was full");
				++failures;
			}
			catch (const member_thunk::page_full& e)
			{
				std::printf("%zu thunks made, then: %s\n", visitors.size(), e.what());
			}
			page.mark_executable();

			// The first and the last thunk of the page both work.
			tree_walk(&root, visitors.front());
			tree_walk(&root, visitors.back());
			if (visitors.size() != page.capacity() || !page.full() || calls != 2 * node_count)
			{
				std::puts("error: the full page misbehaved");
				++failures;
			}
		}

		// Both pages are gone; give their memory back to the OS.
		member_thunk::compact();

		if (failures != 0)
			return 1;
		std::puts("tree_walk: OK");
		return 0;
	}
	catch (const member_thunk::exception& e)
	{
		std::printf("member_thunk failed: %s\n", e.what());
		return 1;
	}
}
